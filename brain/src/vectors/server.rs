//! A Qdrant server over gRPC (`qdrant-client`): one collection shared by all tenants, filtered
//! by the `tenant` payload field on every call.
//!
//! The embedding model is recorded in the collection's metadata (Qdrant 1.16 and later), next
//! to the dense vector size that the collection's own configuration already fixes. Metadata
//! travels with the collection (snapshots, aliases, renames), is visible in the dashboard and
//! needs no reserved point or name scheme that a search could stumble upon. A collection
//! without the record (created by hand, or by a server that drops unknown fields) is accepted
//! when its dimension matches, with a warning, and the record is written then.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{
    CollectionInfo, Condition, CountPointsBuilder, CreateCollection,
    CreateFieldIndexCollectionBuilder, DeletePointsBuilder, Distance, FieldType, Filter,
    KeywordIndexParamsBuilder, ListValue, Modifier, NamedVectors, PointId, PointStruct, Query,
    QueryPointsBuilder, ScoredPoint, SparseVectorConfig, SparseVectorParams, Struct,
    UpdateCollection, UpsertPointsBuilder, Value, Vector, VectorInput, VectorParams,
    VectorParamsMap, Vectors, VectorsConfig, vectors_config,
};
use serde_json::Value as Json;
use uuid::Uuid;

use super::{
    ChunkPoint, DENSE_VECTOR, DOCUMENT_FIELD, Hit, KEYWORD_VECTOR, TENANT_FIELD, VERSION_FIELD,
    VectorError, VectorStore, describe_model, payload_from_json, payload_to_json,
};
use crate::Tenant;
use crate::keyword::SparseVector;

/// Collection metadata key with the embedding model id.
const MODEL_KEY: &str = "coach_embedding_model";
/// Collection metadata key with the embedding dimension.
const DIMENSION_KEY: &str = "coach_embedding_dimension";
/// Points per upsert request, well below gRPC message limits at common dimensions.
const UPSERT_CHUNK: usize = 256;
/// Per-request timeout; writes wait until the server applied them.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Vector store over a collection of a Qdrant server.
#[derive(Clone)]
pub struct ServerStore {
    client: Qdrant,
    collection: String,
}

fn backend(message: impl Into<String>) -> VectorError {
    VectorError::Backend(message.into())
}

impl ServerStore {
    /// A store on `collection` of the server at `url` (the gRPC port, usually 6334). Connections
    /// open lazily, so an unreachable server shows up on the first call ([`VectorStore::ensure`]
    /// at start-up).
    pub fn connect(
        url: &str,
        collection: &str,
        api_key: Option<String>,
    ) -> Result<Self, VectorError> {
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(REQUEST_TIMEOUT)
            .skip_compatibility_check()
            .build()
            .map_err(|e| backend(format!("qdrant client for {url}: {e}")))?;
        Ok(Self {
            client,
            collection: collection.to_string(),
        })
    }

    /// Deletes the whole collection with every tenant's points (tests, full re-embedding).
    pub async fn delete_collection(&self) -> Result<(), VectorError> {
        self.client
            .delete_collection(self.collection.as_str())
            .await
            .map(|_| ())
            .map_err(|e| self.error("deleting the collection", e))
    }

    fn error(&self, what: &str, error: impl std::fmt::Display) -> VectorError {
        backend(format!(
            "qdrant {what} in collection {}: {error}",
            self.collection
        ))
    }

    async fn exists(&self) -> Result<bool, VectorError> {
        self.client
            .collection_exists(self.collection.as_str())
            .await
            .map_err(|e| self.error("existence check", e))
    }

    async fn create(&self, model_id: &str, dimension: usize) -> Result<(), VectorError> {
        let size = u64::try_from(dimension).map_err(|e| backend(e.to_string()))?;
        let dense = VectorParams {
            size,
            distance: i32::from(Distance::Cosine),
            ..VectorParams::default()
        };
        let keyword = SparseVectorParams {
            modifier: Some(i32::from(Modifier::Idf)),
            ..SparseVectorParams::default()
        };
        let request = CreateCollection {
            collection_name: self.collection.clone(),
            vectors_config: Some(VectorsConfig {
                config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                    map: HashMap::from([(DENSE_VECTOR.to_string(), dense)]),
                })),
            }),
            sparse_vectors_config: Some(SparseVectorConfig {
                map: HashMap::from([(KEYWORD_VECTOR.to_string(), keyword)]),
            }),
            metadata: model_metadata(model_id, dimension),
            ..CreateCollection::default()
        };
        let created = self
            .client
            .create_collection(request)
            .await
            .map_err(|e| e.to_string());
        if let Err(reason) = created {
            // Another replica of the gateway may have created it in the meantime.
            if !self.exists().await? {
                return Err(self.error("creating the collection", reason));
            }
            tracing::debug!(
                collection = %self.collection,
                error = %reason,
                "the vector collection appeared concurrently"
            );
        }
        Ok(())
    }

    /// Creates the payload indexes the collection lacks.
    async fn ensure_indexes(&self, info: &CollectionInfo) -> Result<(), VectorError> {
        if !info.payload_schema.contains_key(TENANT_FIELD) {
            let request = CreateFieldIndexCollectionBuilder::new(
                &self.collection,
                TENANT_FIELD,
                FieldType::Keyword,
            )
            .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
            .wait(true);
            self.client
                .create_field_index(request)
                .await
                .map_err(|e| self.error("creating the tenant index", e))?;
        }
        if !info.payload_schema.contains_key(DOCUMENT_FIELD) {
            let request = CreateFieldIndexCollectionBuilder::new(
                &self.collection,
                DOCUMENT_FIELD,
                FieldType::Keyword,
            )
            .wait(true);
            self.client
                .create_field_index(request)
                .await
                .map_err(|e| self.error("creating the document index", e))?;
        }
        Ok(())
    }

    async fn query(
        &self,
        query: Query,
        using: &str,
        tenant: Tenant,
        limit: usize,
    ) -> Result<Vec<Hit>, VectorError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let request = QueryPointsBuilder::new(self.collection.as_str())
            .query(query)
            .using(using)
            .filter(tenant_filter(tenant))
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .with_payload(true);
        let response = self
            .client
            .query(request)
            .await
            .map_err(|e| self.error("search", e))?;
        response.result.into_iter().map(to_hit).collect()
    }

    async fn delete(&self, filter: Filter, what: &str) -> Result<(), VectorError> {
        let request = DeletePointsBuilder::new(self.collection.as_str())
            .points(filter)
            .wait(true);
        self.client
            .delete_points(request)
            .await
            .map(|_| ())
            .map_err(|e| self.error(what, e))
    }
}

fn model_metadata(model_id: &str, dimension: usize) -> HashMap<String, Value> {
    HashMap::from([
        (MODEL_KEY.to_string(), Value::from(model_id.to_string())),
        (
            DIMENSION_KEY.to_string(),
            Value::from(i64::try_from(dimension).unwrap_or(i64::MAX)),
        ),
    ])
}

/// The recorded model id, if the collection carries one.
fn stored_model(info: &CollectionInfo) -> Option<String> {
    let value = info.config.as_ref()?.metadata.get(MODEL_KEY)?;
    match &value.kind {
        Some(Kind::StringValue(model)) => Some(model.clone()),
        _ => None,
    }
}

/// The size of the collection's dense vector, from its configuration.
fn stored_dimension(info: &CollectionInfo) -> Option<u64> {
    let params = info.config.as_ref()?.params.as_ref()?;
    match params.vectors_config.as_ref()?.config.as_ref()? {
        vectors_config::Config::ParamsMap(map) => map.map.get(DENSE_VECTOR).map(|p| p.size),
        vectors_config::Config::Params(_) => None,
    }
}

fn tenant_is(tenant: Tenant) -> Condition {
    Condition::matches(TENANT_FIELD, tenant.id().to_string())
}

fn tenant_filter(tenant: Tenant) -> Filter {
    Filter::must([tenant_is(tenant)])
}

fn to_point(tenant: Tenant, point: ChunkPoint) -> Result<PointStruct, VectorError> {
    let payload = payload_to_json(tenant, &point.payload)?
        .into_iter()
        .map(|(key, value)| (key, from_json(value)))
        .collect();
    let mut vectors = HashMap::from([(DENSE_VECTOR.to_string(), Vector::new_dense(point.dense))]);
    if !point.sparse.is_empty() {
        vectors.insert(
            KEYWORD_VECTOR.to_string(),
            Vector::new_sparse(point.sparse.indices, point.sparse.values),
        );
    }
    Ok(PointStruct {
        id: Some(PointId::from(point.id.to_string())),
        payload,
        vectors: Some(Vectors::from(NamedVectors { vectors })),
    })
}

fn to_hit(point: ScoredPoint) -> Result<Hit, VectorError> {
    let id = match point.id.and_then(|id| id.point_id_options) {
        Some(PointIdOptions::Uuid(id)) => Uuid::parse_str(&id)
            .map_err(|e| backend(format!("qdrant returned point id {id}: {e}")))?,
        other => {
            return Err(backend(format!(
                "qdrant returned an unexpected point id {other:?}"
            )));
        }
    };
    let payload = point
        .payload
        .into_iter()
        .map(|(key, value)| (key, to_json(value)))
        .collect();
    Ok(Hit {
        id,
        score: point.score,
        payload: payload_from_json(payload)?,
    })
}

fn from_json(value: Json) -> Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(flag) => Kind::BoolValue(flag),
        Json::Number(number) => match number.as_i64() {
            Some(integer) => Kind::IntegerValue(integer),
            None => Kind::DoubleValue(number.as_f64().unwrap_or_default()),
        },
        Json::String(text) => Kind::StringValue(text),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(from_json).collect(),
        }),
        Json::Object(fields) => Kind::StructValue(Struct {
            fields: fields
                .into_iter()
                .map(|(key, value)| (key, from_json(value)))
                .collect(),
        }),
    };
    Value { kind: Some(kind) }
}

fn to_json(value: Value) -> Json {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(flag)) => Json::Bool(flag),
        Some(Kind::IntegerValue(integer)) => Json::Number(integer.into()),
        Some(Kind::DoubleValue(double)) => {
            serde_json::Number::from_f64(double).map_or(Json::Null, Json::Number)
        }
        Some(Kind::StringValue(text)) => Json::String(text),
        Some(Kind::ListValue(list)) => Json::Array(list.values.into_iter().map(to_json).collect()),
        Some(Kind::StructValue(object)) => Json::Object(
            object
                .fields
                .into_iter()
                .map(|(key, value)| (key, to_json(value)))
                .collect(),
        ),
    }
}

#[async_trait]
impl VectorStore for ServerStore {
    async fn reset(&self, model_id: &str, dimension: usize) -> Result<(), VectorError> {
        if self.exists().await? {
            self.delete_collection().await?;
        }
        self.ensure(model_id, dimension).await
    }

    async fn ensure(&self, model_id: &str, dimension: usize) -> Result<(), VectorError> {
        if dimension == 0 {
            return Err(backend("the embedding dimension must be positive"));
        }
        if !self.exists().await? {
            self.create(model_id, dimension).await?;
        }
        let info = self
            .client
            .collection_info(self.collection.as_str())
            .await
            .map_err(|e| self.error("reading the collection info", e))?
            .result
            .ok_or_else(|| self.error("reading the collection info", "empty response"))?;
        let configured = describe_model(model_id, dimension);
        let wanted = u64::try_from(dimension).ok();
        match (stored_model(&info), stored_dimension(&info)) {
            (_, None) => {
                return Err(VectorError::ModelMismatch {
                    stored: format!("a collection without a \"{DENSE_VECTOR}\" vector"),
                    configured,
                });
            }
            (Some(model), Some(size)) if model == model_id && Some(size) == wanted => {}
            (None, Some(size)) if Some(size) == wanted => {
                tracing::warn!(
                    collection = %self.collection,
                    model = %configured,
                    "the vector collection does not record its embedding model; recording it"
                );
                let update = UpdateCollection {
                    collection_name: self.collection.clone(),
                    metadata: model_metadata(model_id, dimension),
                    ..UpdateCollection::default()
                };
                if let Err(e) = self.client.update_collection(update).await {
                    tracing::warn!(
                        collection = %self.collection,
                        error = %e,
                        "recording the embedding model failed"
                    );
                }
            }
            (model, Some(size)) => {
                return Err(VectorError::ModelMismatch {
                    stored: match model {
                        Some(model) => format!("{model} ({size} dimensions)"),
                        None => format!("an unrecorded model ({size} dimensions)"),
                    },
                    configured,
                });
            }
        }
        self.ensure_indexes(&info).await
    }

    async fn upsert(&self, tenant: Tenant, points: Vec<ChunkPoint>) -> Result<(), VectorError> {
        if points.is_empty() {
            return Ok(());
        }
        let points = points
            .into_iter()
            .map(|point| to_point(tenant, point))
            .collect::<Result<Vec<_>, _>>()?;
        let request = UpsertPointsBuilder::new(self.collection.as_str(), points).wait(true);
        self.client
            .upsert_points_chunked(request, UPSERT_CHUNK)
            .await
            .map(|_| ())
            .map_err(|e| self.error("upsert", e))
    }

    async fn search_dense(
        &self,
        tenant: Tenant,
        vector: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<Hit>, VectorError> {
        let query = Query::new_nearest(VectorInput::new_dense(vector));
        self.query(query, DENSE_VECTOR, tenant, limit).await
    }

    async fn search_keyword(
        &self,
        tenant: Tenant,
        vector: SparseVector,
        limit: usize,
    ) -> Result<Vec<Hit>, VectorError> {
        if vector.is_empty() {
            return Ok(Vec::new());
        }
        let query = Query::new_nearest(VectorInput::new_sparse(vector.indices, vector.values));
        self.query(query, KEYWORD_VECTOR, tenant, limit).await
    }

    async fn delete_document(
        &self,
        tenant: Tenant,
        document: Uuid,
        keep: Option<i64>,
    ) -> Result<(), VectorError> {
        let mut filter = Filter::must([
            tenant_is(tenant),
            Condition::matches(DOCUMENT_FIELD, document.to_string()),
        ]);
        if let Some(version) = keep {
            filter
                .must_not
                .push(Condition::matches(VERSION_FIELD, version));
        }
        self.delete(filter, "document delete").await
    }

    async fn delete_tenant(&self, tenant: Tenant) -> Result<(), VectorError> {
        self.delete(tenant_filter(tenant), "tenant delete").await
    }

    async fn ping(&self) -> Result<(), VectorError> {
        self.client
            .health_check()
            .await
            .map(|_| ())
            .map_err(|e| backend(format!("qdrant health check: {e}")))
    }

    async fn count(&self, tenant: Tenant) -> Result<usize, VectorError> {
        let request = CountPointsBuilder::new(self.collection.as_str())
            .filter(tenant_filter(tenant))
            .exact(true);
        let response = self
            .client
            .count(request)
            .await
            .map_err(|e| self.error("count", e))?;
        let count = response.result.map_or(0, |result| result.count);
        usize::try_from(count).map_err(|e| self.error("count", e))
    }
}
