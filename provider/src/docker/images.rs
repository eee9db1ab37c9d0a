//! The images the node pulled for jobs, and their pruning. Each job's image stays in the engine's
//! store after the job, so a provider's disk would fill with every image a tenant ever named: an
//! image no job has used for `jobs.keep_images` is removed (hourly, beside the results), the next
//! job naming it pulling it again.
//!
//! Only images the node itself brought onto the host are ever removed: one present before the
//! node's first pull of it (the operator's own, `jobs.local_images` among them) never enters the
//! book. An image a container still uses is refused by the engine (409) and kept for the next look.
//! The book is a small JSON file of the node's (`<data_dir>/images.json`), replaced whole.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use gridlease_daemon::lock;
use hyper::Method;
use tracing::{debug, info, warn};

use super::{API, ContainerExecutor, DockerError};

/// Image -> when a job last used it (unix seconds).
type Uses = BTreeMap<String, u64>;

/// The images the node pulled, and when each was last used.
#[derive(Debug)]
pub struct ImageBook {
    path: PathBuf,
    uses: Mutex<Uses>,
}

impl ImageBook {
    /// The book kept at `path` (empty when there is none yet, or it cannot be read: an image it
    /// forgets stays on the host, which is safe).
    pub fn open(path: &Path) -> Self {
        let uses = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                warn!(path = %path.display(), error = %e, "unreadable image book: starting an empty one (the images it listed stay on the host)");
                Uses::new()
            }),
            Err(_) => Uses::new(),
        };
        Self {
            path: path.to_owned(),
            uses: Mutex::new(uses),
        }
    }

    /// A job uses `image` at `now`; `pulled` when this node just brought it onto the host. An
    /// image the node did not bring is not booked (it is the operator's).
    pub fn used(&self, image: &str, pulled: bool, now: u64) {
        let mut uses = lock(&self.uses);
        if pulled || uses.contains_key(image) {
            uses.insert(image.to_owned(), now);
            self.save(&uses);
        }
    }

    /// The booked images no job used since `before`.
    pub fn unused_since(&self, before: u64) -> Vec<String> {
        lock(&self.uses)
            .iter()
            .filter(|(_, at)| **at < before)
            .map(|(i, _)| i.clone())
            .collect()
    }

    /// Whether no job used the booked `image` since `before`.
    pub fn unused(&self, image: &str, before: u64) -> bool {
        lock(&self.uses).get(image).is_some_and(|at| *at < before)
    }

    /// `image` is gone from the host.
    pub fn forget(&self, image: &str) {
        let mut uses = lock(&self.uses);
        if uses.remove(image).is_some() {
            self.save(&uses);
        }
    }

    /// The booked images and their last use.
    pub fn uses(&self) -> Uses {
        lock(&self.uses).clone()
    }

    fn save(&self, uses: &Uses) {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(uses).unwrap_or_default();
        if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &self.path))
        {
            warn!(path = %self.path.display(), error = %e, "cannot save the image book");
        }
    }
}

impl ContainerExecutor {
    /// Keep a book of the images this node pulls, at `path` (see [`ImageBook`]).
    pub fn with_image_book(mut self, path: &Path) -> Self {
        self.images = Some(std::sync::Arc::new(ImageBook::open(path)));
        self
    }

    /// Remove from the engine's store the images this node pulled that no job used since
    /// `before` (unix seconds); how many went. One a container still uses is kept.
    pub async fn prune_images(&self, before: u64) -> usize {
        let Some(book) = &self.images else {
            return 0;
        };
        let mut removed = 0;
        for image in book.unused_since(before) {
            // A job that named it since the list was made keeps it.
            if !book.unused(&image, before) {
                continue;
            }
            let r = self
                .call(
                    "remove image",
                    Method::DELETE,
                    &format!("{API}/images/{image}"),
                    None,
                )
                .await;
            match r {
                Ok(_) => {
                    book.forget(&image);
                    removed += 1;
                    info!(image, "removed an image no job used in jobs.keep_images");
                }
                Err(DockerError::Api { status: 404, .. }) => book.forget(&image),
                Err(DockerError::Api { status: 409, .. }) => {
                    debug!(image, "an unused image is still held by a container: kept");
                }
                Err(e) => warn!(image, error = %e, "cannot remove an unused image"),
            }
        }
        removed
    }
}
