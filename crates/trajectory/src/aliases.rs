//! Renamed trajectory ids. An earlier event or a merge gives a trajectory a new id (see
//! `window`); the old id maps to the one that took its place, so links to it keep working
//! and the alert book can tell an evaluation under a retired id is stale. One tree, read by
//! both the trajectory stage and the alert book.

use plumbline_store::{Store, StoreError};

#[derive(Clone)]
pub struct Aliases(sled::Tree);

impl Aliases {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Aliases(store.db().open_tree("trajectory_aliases")?))
    }

    /// Records renames (old → new) as they happen.
    pub fn record(&self, renamed: &[(String, String)]) -> Result<(), StoreError> {
        for (old, new) in renamed {
            self.0.insert(old.as_bytes(), new.as_bytes())?;
        }
        Ok(())
    }

    /// Whether `id` was renamed.
    pub fn is_renamed(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.0.contains_key(id.as_bytes())?)
    }

    /// The id a renamed trajectory goes by now (following renames), if it was renamed.
    pub fn resolve(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut current = id.to_string();
        // Ids only ever move to an earlier origin, so the chain cannot loop; the bound is
        // a guard against a damaged tree.
        for _ in 0..64 {
            match self.0.get(current.as_bytes())? {
                Some(next) => current = String::from_utf8_lossy(&next).into_owned(),
                None => break,
            }
        }
        Ok((current != id).then_some(current))
    }

    /// Forgets every rename that leads (directly or along a chain) to one of `gone`, the
    /// ids retention removed. Returns how many.
    pub fn forget_leading_to(
        &self,
        mut gone: std::collections::HashSet<String>,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        // Each pass follows chains one step further back; chains are short (see resolve).
        for _ in 0..64 {
            let mut more = Vec::new();
            for item in self.0.iter() {
                let (old, new) = item?;
                if gone.contains(String::from_utf8_lossy(&new).as_ref()) {
                    self.0.remove(&old)?;
                    more.push(String::from_utf8_lossy(&old).into_owned());
                }
            }
            if more.is_empty() {
                break;
            }
            removed += more.len();
            gone.extend(more);
        }
        Ok(removed)
    }
}
