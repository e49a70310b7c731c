//! The integration tests of cache-memory, in one test binary (one link instead of one
//! per file): each former `tests/<name>.rs` is the module `<name>`.

mod conformance;
mod lru;
