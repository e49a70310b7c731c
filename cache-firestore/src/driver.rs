//! The driver side: the client, document names and fields, expiry encoding, and the
//! three calls the backend is built on (Commit, BatchGetDocuments, RunQuery), each
//! bounded by the timeout.

use crate::config::FirestoreConfig;
use crate::error::{config, map, map_crate, BACKEND};
use cache_core::raw::{sha256_hex, within, KeyKind, KeyLayout};
use cache_core::Result;
use firestore::{FirestoreDb, FirestoreDbOptions};
use gcloud_sdk::google::firestore::v1::{
    batch_get_documents_response, precondition, run_query_request, structured_query,
    value::ValueType, write, BatchGetDocumentsRequest, CommitRequest, Document, DocumentMask,
    Precondition, RunQueryRequest, StructuredQuery, Value, Write,
};
use gcloud_sdk::prost_types::Timestamp;
use gcloud_sdk::tonic::{Code, Status};
use std::collections::HashMap;
use std::time::Duration;

/// The key kept in a document's `key` field: literal up to 1 500 bytes (what
/// Firestore indexes of a string), else its digest. The document id is the SHA-256 of
/// the whole store key, so ids are always valid (no `/`, never `.`, `..` or `__x__`).
pub(crate) const LAYOUT: KeyLayout = KeyLayout::ANY.max_len(MAX_KEY_LEN);
pub(crate) const MAX_KEY_LEN: usize = 1500;

/// Field names.
pub(crate) const NS: &str = "ns";
pub(crate) const KEY: &str = "key";
pub(crate) const VALUE: &str = "value";
pub(crate) const EXPIRES: &str = "expires_at";

/// Most writes in one Commit, and most documents asked in one BatchGetDocuments.
pub(crate) const COMMIT_MAX: usize = 500;
pub(crate) const GET_MAX: usize = 100;

/// The document id of `key` of `kind` in `namespace`, and the stored key.
pub(crate) fn doc_id(namespace: &str, kind: KeyKind, key: &str) -> (String, String) {
    let store = LAYOUT.key(namespace, kind, key);
    (sha256_hex(store.to_string().as_bytes()), store.body())
}

fn value(v: ValueType) -> Value {
    Value {
        value_type: Some(v),
    }
}

fn timestamp(ms: u64) -> Timestamp {
    Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

pub(crate) fn millis(t: &Timestamp) -> u64 {
    (t.seconds.max(0) as u64) * 1000 + (t.nanos.max(0) as u64) / 1_000_000
}

/// Whether a document (read with its `expires_at`) is live at `now` (epoch ms): no
/// expiry, or one in the future. Firestore's TTL policies delete expired documents
/// only within a day or so, so every read checks.
pub(crate) fn is_live(doc: &Document, now: u64) -> bool {
    expires_ms(doc).is_none_or(|at| at > now)
}

/// A document's `expires_at` in epoch ms (`None`: never).
pub(crate) fn expires_ms(doc: &Document) -> Option<u64> {
    match doc.fields.get(EXPIRES).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::TimestampValue(t)) => Some(millis(t)),
        _ => None,
    }
}

/// The value bytes of a document, borrowed.
pub(crate) fn value_ref(doc: &Document) -> Option<&[u8]> {
    match doc.fields.get(VALUE)?.value_type.as_ref()? {
        ValueType::BytesValue(b) => Some(b),
        _ => None,
    }
}

/// `doc` (a lock as read) with `bytes` in place of its token; every other field
/// (namespace, key, expiry) as read.
pub(crate) fn with_value(doc: &Document, bytes: &[u8]) -> Document {
    let mut fields = doc.fields.clone();
    fields.insert(
        VALUE.to_owned(),
        value(ValueType::BytesValue(bytes.to_vec())),
    );
    Document {
        name: doc.name.clone(),
        fields,
        ..Document::default()
    }
}

/// The value bytes of a document.
pub(crate) fn value_of(doc: Document) -> Option<Vec<u8>> {
    match doc
        .fields
        .into_iter()
        .find(|(k, _)| k == VALUE)?
        .1
        .value_type?
    {
        ValueType::BytesValue(b) => Some(b),
        _ => None,
    }
}

/// What every namespace's handle shares: the client and the paths.
pub(crate) struct Driver {
    pub(crate) db: FirestoreDb,
    /// `projects/P/databases/D`
    pub(crate) database: String,
    /// `projects/P/databases/D/documents`
    pub(crate) documents: String,
    pub(crate) collection: String,
    pub(crate) timeout: Duration,
}

/// What a conditional write found.
pub(crate) enum Conditional {
    Done,
    /// The precondition failed: the document exists (create) or changed (update time).
    Failed,
}

impl Driver {
    pub(crate) async fn connect(cfg: &FirestoreConfig) -> Result<Driver> {
        if cfg.project_id.is_empty() {
            return Err(config("project_id is required"));
        }
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 1500
                && !s.contains('/')
                && s != "."
                && s != ".."
                && !(s.starts_with("__") && s.ends_with("__"))
        };
        if !valid(&cfg.collection) {
            return Err(config(format!(
                "invalid collection id {:?}: non-empty, no '/', not '.', '..' or __name__",
                cfg.collection
            )));
        }
        if !valid(&cfg.database_id) || !valid(&cfg.project_id) {
            return Err(config("invalid project_id or database_id"));
        }
        if cfg.timeout.is_zero() || cfg.connect_timeout.is_zero() {
            return Err(config("timeout and connect_timeout must be positive"));
        }
        if cfg.max_value_size > crate::config::MAX_VALUE {
            return Err(config(format!(
                "max_value_size is over what fits a 1 MiB Firestore document; use at most {}",
                crate::config::MAX_VALUE
            )));
        }
        // gcloud-sdk's HTTP client compiles rustls with aws-lc-rs; the rest of the
        // workspace uses ring. rustls needs one process-wide provider when both are
        // in: take aws-lc-rs unless the application installed one.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut options = FirestoreDbOptions::new(cfg.project_id.clone());
        options.database_id = cfg.database_id.clone();
        options.max_retries = 0;
        let db = within(BACKEND, cfg.connect_timeout, async {
            match &cfg.key_file {
                Some(path) => {
                    FirestoreDb::with_options_service_account_key_file(options, path.clone()).await
                }
                None => FirestoreDb::with_options(options).await,
            }
            .map_err(map_crate)
        })
        .await?;
        let driver = Driver {
            database: db.get_database_path().clone(),
            documents: db.get_documents_path().clone(),
            db,
            collection: cfg.collection.clone(),
            timeout: cfg.timeout,
        };
        // One read of a document that is never written: reachable, authorized, and the
        // database exists.
        within(BACKEND, cfg.connect_timeout, async {
            driver
                .batch_get_raw(vec![driver.name("cache-connection-check")], None)
                .await
                .map_err(map)
        })
        .await?;
        Ok(driver)
    }

    /// The full name of the document `id` of the collection.
    pub(crate) fn name(&self, id: &str) -> String {
        format!("{}/{}/{}", self.documents, self.collection, id)
    }

    /// A whole document: every field written (so a write replaces, also on an emulator
    /// that merges), the expiry null when there is none.
    pub(crate) fn document(
        &self,
        id: &str,
        namespace: &str,
        key: String,
        bytes: &[u8],
        expires_ms: Option<u64>,
    ) -> Document {
        let mut fields = HashMap::with_capacity(4);
        fields.insert(
            NS.to_owned(),
            value(ValueType::StringValue(namespace.to_owned())),
        );
        fields.insert(KEY.to_owned(), value(ValueType::StringValue(key)));
        fields.insert(
            VALUE.to_owned(),
            value(ValueType::BytesValue(bytes.to_vec())),
        );
        fields.insert(
            EXPIRES.to_owned(),
            value(match expires_ms {
                Some(ms) => ValueType::TimestampValue(timestamp(ms)),
                None => ValueType::NullValue(0),
            }),
        );
        Document {
            name: self.name(id),
            fields,
            ..Document::default()
        }
    }

    async fn batch_get_raw(
        &self,
        names: Vec<String>,
        mask: Option<&[&str]>,
    ) -> std::result::Result<Vec<Document>, Status> {
        let request = BatchGetDocumentsRequest {
            database: self.database.clone(),
            documents: names,
            mask: mask.map(|fields| DocumentMask {
                field_paths: fields.iter().map(|f| (*f).to_owned()).collect(),
            }),
            ..BatchGetDocumentsRequest::default()
        };
        let mut stream = self
            .db
            .client()
            .get()
            .batch_get_documents(request)
            .await?
            .into_inner();
        let mut found = Vec::new();
        while let Some(r) = stream.message().await? {
            if let Some(batch_get_documents_response::Result::Found(d)) = r.result {
                found.push(d);
            }
        }
        Ok(found)
    }

    /// The documents of `names` (at most [`GET_MAX`]) that exist, with the fields of
    /// `mask` (`None`: all) and their update times.
    pub(crate) async fn batch_get(
        &self,
        names: Vec<String>,
        mask: Option<&[&str]>,
    ) -> Result<Vec<Document>> {
        within(BACKEND, self.timeout, async {
            self.batch_get_raw(names, mask).await.map_err(map)
        })
        .await
    }

    /// Commit `writes` (at most [`COMMIT_MAX`]).
    pub(crate) async fn commit(&self, writes: Vec<Write>) -> Result<()> {
        match self.commit_conditional(writes).await? {
            Conditional::Done => Ok(()),
            Conditional::Failed => Err(cache_core::Error::new(
                cache_core::ErrorKind::Backend,
                BACKEND,
                "Firestore refused an unconditional write with a failed precondition",
            )),
        }
    }

    /// Commit `writes`; a failed precondition (`ALREADY_EXISTS` for a create,
    /// `FAILED_PRECONDITION` or `NOT_FOUND` for an update-time check) is
    /// [`Conditional::Failed`], not an error.
    pub(crate) async fn commit_conditional(&self, writes: Vec<Write>) -> Result<Conditional> {
        let request = CommitRequest {
            database: self.database.clone(),
            writes,
            ..CommitRequest::default()
        };
        within(BACKEND, self.timeout, async {
            match self.db.client().get().commit(request).await {
                Ok(_) => Ok(Conditional::Done),
                Err(s)
                    if matches!(
                        s.code(),
                        Code::AlreadyExists | Code::FailedPrecondition | Code::NotFound
                    ) =>
                {
                    Ok(Conditional::Failed)
                }
                Err(s) => Err(map(s)),
            }
        })
        .await
    }

    /// Up to `limit` documents of `namespace` (with `expired_before`: only those whose
    /// `expires_at` is before that instant, epoch ms; documents without expiry never
    /// match). Real Firestore projects them to their names and expiries.
    pub(crate) async fn query_ns(
        &self,
        namespace: &str,
        expired_before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Document>> {
        self.query(namespace, expired_before, true, None, limit)
            .await
    }

    /// Up to `limit` whole documents of `namespace` in name order, from after the
    /// document named `after` (a page cursor: for pages of documents the caller
    /// keeps).
    pub(crate) async fn query_ns_whole(
        &self,
        namespace: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<Document>> {
        self.query(namespace, None, false, after, limit).await
    }

    async fn query(
        &self,
        namespace: &str,
        expired_before: Option<u64>,
        projected: bool,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<Document>> {
        use gcloud_sdk::google::firestore::v1::Cursor;
        use structured_query::{
            composite_filter, field_filter, filter, CollectionSelector, CompositeFilter, Direction,
            FieldFilter, FieldReference, Filter, Order, Projection,
        };
        let field_filter = |field: &str, op: field_filter::Operator, v: ValueType| Filter {
            filter_type: Some(filter::FilterType::FieldFilter(FieldFilter {
                field: Some(FieldReference {
                    field_path: field.into(),
                }),
                op: op as i32,
                value: Some(value(v)),
            })),
        };
        let in_ns = field_filter(
            NS,
            field_filter::Operator::Equal,
            ValueType::StringValue(namespace.to_owned()),
        );
        let r#where = match expired_before {
            None => in_ns,
            Some(ms) => Filter {
                filter_type: Some(filter::FilterType::CompositeFilter(CompositeFilter {
                    op: composite_filter::Operator::And as i32,
                    filters: vec![
                        in_ns,
                        field_filter(
                            EXPIRES,
                            field_filter::Operator::LessThan,
                            ValueType::TimestampValue(timestamp(ms)),
                        ),
                    ],
                })),
            },
        };
        let query = StructuredQuery {
            select: projected.then(|| Projection {
                fields: ["__name__", EXPIRES]
                    .iter()
                    .map(|f| FieldReference {
                        field_path: (*f).into(),
                    })
                    .collect(),
            }),
            from: vec![CollectionSelector {
                collection_id: self.collection.clone(),
                all_descendants: false,
            }],
            r#where: Some(r#where),
            // Name order (what Firestore uses anyway), for the cursor of the next page.
            order_by: (!projected)
                .then(|| Order {
                    field: Some(FieldReference {
                        field_path: "__name__".into(),
                    }),
                    direction: Direction::Ascending as i32,
                })
                .into_iter()
                .collect(),
            start_at: after.map(|name| Cursor {
                values: vec![value(ValueType::ReferenceValue(name))],
                before: false,
            }),
            limit: Some(limit as i32),
            ..StructuredQuery::default()
        };
        let request = RunQueryRequest {
            parent: self.documents.clone(),
            query_type: Some(run_query_request::QueryType::StructuredQuery(query)),
            ..RunQueryRequest::default()
        };
        within(BACKEND, self.timeout, async {
            let mut stream = self
                .db
                .client()
                .get()
                .run_query(request)
                .await
                .map_err(map)?
                .into_inner();
            let mut docs = Vec::new();
            while let Some(r) = stream.message().await.map_err(map)? {
                docs.extend(r.document);
            }
            Ok(docs)
        })
        .await
    }
}

/// A write that replaces (or creates) `doc`.
pub(crate) fn put(doc: Document) -> Write {
    Write {
        operation: Some(write::Operation::Update(doc)),
        ..Write::default()
    }
}

/// A write that creates `doc` only if no document has its name.
pub(crate) fn create(doc: Document) -> Write {
    Write {
        current_document: Some(Precondition {
            condition_type: Some(precondition::ConditionType::Exists(false)),
        }),
        ..put(doc)
    }
}

/// A write that replaces `doc` only if it was last updated at `seen`.
pub(crate) fn replace_if_unchanged(doc: Document, seen: Timestamp) -> Write {
    Write {
        current_document: Some(Precondition {
            condition_type: Some(precondition::ConditionType::UpdateTime(seen)),
        }),
        ..put(doc)
    }
}

/// A write that deletes the document `name`.
pub(crate) fn delete(name: String) -> Write {
    Write {
        operation: Some(write::Operation::Delete(name)),
        ..Write::default()
    }
}

/// A write that changes nothing and fails the commit if the document `name` exists:
/// a delete with the precondition `exists: false`, a no-op when it holds.
pub(crate) fn absent(name: String) -> Write {
    Write {
        current_document: Some(Precondition {
            condition_type: Some(precondition::ConditionType::Exists(false)),
        }),
        ..delete(name)
    }
}

/// A write that deletes the document `name` only if it was last updated at `seen`.
pub(crate) fn delete_if_unchanged(name: String, seen: Timestamp) -> Write {
    Write {
        current_document: Some(Precondition {
            condition_type: Some(precondition::ConditionType::UpdateTime(seen)),
        }),
        ..delete(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::raw::expires_at_ms as expires_at;
    use cache_core::Expiry;

    #[test]
    fn ids_are_digests_and_keys_are_bounded() {
        let (id, key) = doc_id("app", KeyKind::Value, "user:1");
        assert_eq!(id.len(), 64);
        assert_eq!(key, "user:1");
        let (lock, _) = doc_id("app", KeyKind::Lock, "user:1");
        assert_ne!(id, lock);
        let (_, long) = doc_id("app", KeyKind::Value, &"é".repeat(5000));
        assert!(long.len() < MAX_KEY_LEN && long.starts_with('#'));
    }

    #[test]
    fn expiries_round_up_clamp_and_read_back() {
        assert_eq!(expires_at(Expiry::Never), Ok(None));
        assert_eq!(expires_at(Expiry::After(Duration::ZERO)), Err(()));
        assert_eq!(
            expires_at(Expiry::After(Duration::MAX)),
            Ok(Some(253_402_300_799_000))
        );
        assert_eq!(millis(&timestamp(1_234_567)), 1_234_567);
        let doc = |exp: ValueType| Document {
            fields: HashMap::from([(EXPIRES.to_owned(), value(exp))]),
            ..Document::default()
        };
        let d = doc(ValueType::TimestampValue(timestamp(1_500)));
        assert!(is_live(&d, 1_499) && !is_live(&d, 1_500));
        assert!(is_live(&doc(ValueType::NullValue(0)), u64::MAX));
    }
}
