//! Data structures that carry messages: the SPSC ring between two shards, the injection queue
//! for outside threads, and the type-erased message with inline storage.

pub(crate) mod erased;
pub(crate) mod inject;
pub(crate) mod ring;
