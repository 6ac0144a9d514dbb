//! Data structures that carry messages: the SPSC ring between two shards, the injection queue
//! for outside threads, the type-erased message with inline storage, and the batch that lets
//! several small messages share one.

pub(crate) mod batch;
pub(crate) mod erased;
pub(crate) mod inject;
pub(crate) mod ring;
