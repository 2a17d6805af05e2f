//! Page bodies edited (through the block API, `/_sim` and the Rust API): finding a block (live or in the trash),
//! appending children (at the end, the start or after a block), updating a block's
//! content, moving a block to the trash and back. Each edit is one page version and one
//! `page.content_updated`.

use std::sync::Arc;

use crate::block_json::BlockUpdate;
use crate::clock::floor_minute;
use crate::error::SimError;
use crate::generate::from_sim_blocks;
use crate::model::{Block, BlockKind, PageSnapshot, Segment, TrashedBlock, World};
use crate::mutate::Ctx;
use crate::webhooks::EventSpec;
use crate::{BodyEdit, SimBlock};

/// Where appended blocks go among the parent's children.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Position {
    End,
    Start,
    After(String),
}

/// Blocks just appended, with their page and parent block (None = the page).
pub(crate) type Appended = (Vec<Block>, String, Option<String>);

/// A block of a shared page, as the block API sees it.
pub(crate) struct BlockAt<'a> {
    pub page_id: &'a str,
    /// The parent block (None = the page).
    pub parent: Option<&'a str>,
    pub block: &'a Block,
    /// The block (or one of its ancestors) is in the trash, or its page is.
    pub in_trash: bool,
}

/// A block of a shared page, live or in the trash; None for pages and unknown ids.
pub(crate) fn find_block<'a>(w: &'a World, id: &str) -> Option<BlockAt<'a>> {
    let page_id = w.block_index.get(id)?;
    let page = w.pages.get(page_id).filter(|p| p.shared)?;
    let snap = page.latest();
    if let Some((block, parent)) = Block::find(&snap.body, id, None) {
        return Some(BlockAt {
            page_id: &page.id,
            parent,
            block,
            in_trash: snap.in_trash,
        });
    }
    w.trashed_blocks
        .values()
        .filter(|t| t.page_id == page.id)
        .find_map(|t| {
            let (block, parent) = if t.block.id == id {
                (&t.block, t.parent.as_deref())
            } else {
                Block::find(&t.block.children, id, Some(&t.block.id))?
            };
            Some(BlockAt {
                page_id: &page.id,
                parent,
                block,
                in_trash: true,
            })
        })
}

/// The children list of `parent` (None = the page body) inside `blocks`.
fn children_mut<'a>(
    blocks: &'a mut Vec<Block>,
    parent: Option<&str>,
) -> Option<&'a mut Vec<Block>> {
    let Some(pid) = parent else {
        return Some(blocks);
    };
    for b in blocks.iter_mut() {
        if b.id == pid {
            return Some(&mut b.children);
        }
        if let Some(found) = children_mut(&mut b.children, Some(pid)) {
            return Some(found);
        }
    }
    None
}

fn find_mut<'a>(blocks: &'a mut [Block], id: &str) -> Option<&'a mut Block> {
    for b in blocks.iter_mut() {
        if b.id == id {
            return Some(b);
        }
        if let Some(found) = find_mut(&mut b.children, id) {
            return Some(found);
        }
    }
    None
}

impl World {
    /// The page holding `id` (a page id or a block id) and the parent block (None = page).
    fn body_owner(&self, id: &str) -> Result<(String, Option<String>), SimError> {
        if self.pages.contains_key(id) {
            return Ok((id.to_owned(), None));
        }
        let page_id = self
            .block_index
            .get(id)
            .ok_or_else(|| SimError::Invalid(format!("no block {id}")))?;
        Ok((page_id.clone(), Some(id.to_owned())))
    }

    /// Commits a body change of `page_id` made by `edit` and returns its event.
    fn edit_blocks(
        &mut self,
        ctx: &Ctx,
        page_id: &str,
        edit: impl FnOnce(&mut World, &mut Vec<Block>) -> Result<Vec<String>, SimError>,
    ) -> Result<Vec<EventSpec>, SimError> {
        let page = self
            .pages
            .get(page_id)
            .ok_or_else(|| SimError::PageNotFound(page_id.to_owned()))?
            .clone();
        let mut snap = PageSnapshot::clone(page.latest());
        let mut blocks: Vec<Block> = snap.body.as_ref().clone();
        let updated = edit(self, &mut blocks)?;
        snap.body = Arc::new(blocks);
        self.commit(ctx, page_id, snap)?;
        let mut ev = self.page_event(&page, "page.content_updated", ctx);
        ev.updated_blocks = Some(updated);
        Ok(vec![ev])
    }

    /// A body edit made through `/_sim` or the Rust API.
    pub(crate) fn edit_body(
        &mut self,
        ctx: &Ctx,
        page_id: &str,
        edit: BodyEdit,
    ) -> Result<Vec<EventSpec>, SimError> {
        let at = floor_minute(ctx.now);
        self.edit_blocks(ctx, page_id, |w, blocks| match edit {
            BodyEdit::AppendParagraph(text) => {
                let new = from_sim_blocks(w, &[SimBlock::Paragraph(text)], at, &ctx.author.id);
                let ids = new.iter().map(|b| b.id.clone()).collect();
                blocks.extend(new);
                Ok(ids)
            }
            BodyEdit::ReplaceParagraph { index, text } => {
                let block = blocks
                    .get_mut(index)
                    .filter(|b| b.kind.has_text())
                    .ok_or(SimError::BadBlockIndex(index))?;
                block.text = vec![Segment::plain(text)];
                block.last_edited_time = at;
                block.last_edited_by = ctx.author.id.clone();
                Ok(vec![block.id.clone()])
            }
            BodyEdit::Replace(new) => {
                let mut ids: Vec<String> = blocks.iter().map(|b| b.id.clone()).collect();
                *blocks = from_sim_blocks(w, &new, at, &ctx.author.id);
                ids.extend(blocks.iter().map(|b| b.id.clone()));
                Ok(ids)
            }
        })
    }

    /// Appends `new` under `parent_id` (a page or a block) at `position`; returns copies of
    /// the appended blocks with the page id and parent block.
    pub(crate) fn append_blocks(
        &mut self,
        ctx: &Ctx,
        parent_id: &str,
        new: Vec<Block>,
        position: Position,
    ) -> Result<(Appended, Vec<EventSpec>), SimError> {
        let (page_id, parent) = self.body_owner(parent_id)?;
        let added = new.clone();
        let ids: Vec<String> = new.iter().map(|b| b.id.clone()).collect();
        let events = self.edit_blocks(ctx, &page_id, |_, blocks| {
            let list = children_mut(blocks, parent.as_deref())
                .ok_or_else(|| SimError::Invalid(format!("no block {parent_id}")))?;
            let at = match &position {
                Position::End => list.len(),
                Position::Start => 0,
                Position::After(after) => {
                    list.iter().position(|b| b.id == *after).ok_or_else(|| {
                        SimError::Invalid(format!(
                            "body failed validation: block {after} is not a child of {parent_id}."
                        ))
                    })? + 1
                }
            };
            list.splice(at..at, new);
            Ok(ids)
        })?;
        Ok(((added, page_id, parent), events))
    }

    /// Applies a content update to a live block.
    pub(crate) fn update_block(
        &mut self,
        ctx: &Ctx,
        id: &str,
        update: &BlockUpdate,
    ) -> Result<Vec<EventSpec>, SimError> {
        let (page_id, _) = self.body_owner(id)?;
        self.edit_blocks(ctx, &page_id, |_, blocks| {
            let block =
                find_mut(blocks, id).ok_or_else(|| SimError::Invalid(format!("no block {id}")))?;
            if let Some(text) = &update.text {
                block.text.clone_from(text);
            }
            match (&mut block.kind, update.checked, &update.language) {
                (BlockKind::ToDo { checked }, Some(c), _) => *checked = c,
                (BlockKind::Code { language }, _, Some(l)) => language.clone_from(l),
                _ => {}
            }
            block.last_edited_time = floor_minute(ctx.now);
            block.last_edited_by = ctx.author.id.clone();
            Ok(vec![id.to_owned()])
        })
    }

    /// Moves a live block (with its children) to the trash.
    pub(crate) fn trash_block(&mut self, ctx: &Ctx, id: &str) -> Result<Vec<EventSpec>, SimError> {
        let (page_id, _) = self.body_owner(id)?;
        let parent = {
            let page = self
                .pages
                .get(&page_id)
                .ok_or_else(|| SimError::PageNotFound(page_id.clone()))?;
            Block::find(&page.latest().body, id, None)
                .ok_or_else(|| SimError::Invalid(format!("no block {id}")))?
                .1
                .map(str::to_owned)
        };
        let owner = page_id.clone();
        self.edit_blocks(ctx, &page_id, |w, blocks| {
            let list = children_mut(blocks, parent.as_deref())
                .ok_or_else(|| SimError::Invalid(format!("no block {id}")))?;
            let index = list
                .iter()
                .position(|b| b.id == id)
                .ok_or_else(|| SimError::Invalid(format!("no block {id}")))?;
            let block = list.remove(index);
            w.trashed_blocks.insert(
                id.to_owned(),
                TrashedBlock {
                    page_id: owner,
                    parent,
                    index,
                    block,
                },
            );
            Ok(vec![id.to_owned()])
        })
    }

    /// Puts a trashed block back where it was (its index clamped to the parent's children).
    pub(crate) fn restore_block(
        &mut self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<Vec<EventSpec>, SimError> {
        let trashed = self
            .trashed_blocks
            .get(id)
            .cloned()
            .ok_or_else(|| SimError::Invalid(format!("block {id} is not in the trash")))?;
        let page_id = trashed.page_id.clone();
        self.edit_blocks(ctx, &page_id, |w, blocks| {
            let list = children_mut(blocks, trashed.parent.as_deref()).ok_or_else(|| {
                SimError::Invalid(format!(
                    "Can't restore block {id}: its parent is archived. Restore the parent first."
                ))
            })?;
            let at = trashed.index.min(list.len());
            list.insert(at, trashed.block);
            w.trashed_blocks.remove(id);
            Ok(vec![id.to_owned()])
        })
    }
}
