//! cache-core's integration tests, one binary (the observability tests, which install
//! a global tracing subscriber, have their own).

mod batch;
mod batch_races;
mod defaults;
mod invalidate;
mod once;
mod trust;
