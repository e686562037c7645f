use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{0}")]
    Store(#[from] mv_store::StoreError),
    #[error("search index {path}: {source}")]
    Tantivy {
        path: PathBuf,
        source: tantivy::TantivyError,
    },
    #[error("search index {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("search index {path} is damaged: {what}")]
    Damaged { path: PathBuf, what: String },
}

impl IndexError {
    pub(crate) fn tantivy(path: &std::path::Path) -> impl Fn(tantivy::TantivyError) -> IndexError {
        let path = path.to_path_buf();
        move |source| IndexError::Tantivy {
            path: path.clone(),
            source,
        }
    }

    /// True when the index itself (not the store) failed: the index is then dropped
    /// and rebuilt.
    pub(crate) fn is_index_fault(&self) -> bool {
        !matches!(self, IndexError::Store(_))
    }
}
