//! Conversions between the store's types and qdrant-edge's: payload filters (every search and
//! delete carries the tenant condition), points, hits and the nearest-neighbour query.

use super::*;

pub(super) fn json_path(field: &str) -> Result<JsonPath, VectorError> {
    JsonPath::try_from(field).map_err(|()| backend(format!("invalid payload field name {field}")))
}

pub(super) fn field_is(field: &str, value: ValueVariants) -> Result<Condition, VectorError> {
    Ok(Condition::Field(FieldCondition::new_match(
        json_path(field)?,
        Match::new_value(value),
    )))
}

pub(super) fn tenant_is(tenant: Tenant) -> Result<Condition, VectorError> {
    field_is(TENANT_FIELD, ValueVariants::String(tenant.id().to_string()))
}

pub(super) fn tenant_filter(tenant: Tenant) -> Result<Filter, VectorError> {
    Ok(Filter {
        must: Some(vec![tenant_is(tenant)?]),
        ..Filter::default()
    })
}

pub(super) fn to_point(
    tenant: Tenant,
    point: ChunkPoint,
    dimension: usize,
) -> Result<PointStructPersisted, VectorError> {
    let id = point.id;
    if point.dense.len() != dimension {
        return Err(backend(format!(
            "point {id} has a {}-dimensional vector, the collection holds {dimension} dimensions",
            point.dense.len()
        )));
    }
    let payload = payload_to_json(tenant, &point.payload)?;
    let mut vectors = HashMap::new();
    vectors.insert(DENSE_VECTOR.to_string(), VectorInternal::Dense(point.dense));
    if !point.sparse.is_empty() {
        vectors.insert(KEYWORD_VECTOR.to_string(), engine_sparse(point.sparse)?);
    }
    Ok(PointStructPersisted {
        id: PointId::Uuid(id),
        vector: VectorStructPersisted::from(VectorStructInternal::Named(vectors)),
        payload: Some(Payload(payload)),
    })
}

pub(super) fn engine_sparse(vector: SparseVector) -> Result<VectorInternal, VectorError> {
    qdrant_edge::SparseVector::new(vector.indices, vector.values)
        .map(VectorInternal::Sparse)
        .map_err(|e| backend(format!("invalid keyword vector: {e}")))
}

pub(super) fn to_hit(point: ScoredPoint) -> Result<Hit, VectorError> {
    let id = match point.id {
        PointId::Uuid(id) => id,
        PointId::NumId(number) => {
            return Err(backend(format!("unexpected numeric point id {number}")));
        }
    };
    let payload = point
        .payload
        .ok_or_else(|| backend(format!("point {id} came back without its payload")))?;
    Ok(Hit {
        id,
        score: point.score,
        payload: payload_from_json(payload.0)?,
    })
}

pub(super) fn nearest(
    vector: VectorInternal,
    using: &str,
    tenant: Tenant,
    limit: usize,
) -> Result<QueryRequest, VectorError> {
    Ok(QueryRequest {
        prefetches: Vec::new(),
        query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query: vector,
            using: Some(using.to_string()),
        }))),
        filter: Some(tenant_filter(tenant)?),
        score_threshold: None,
        limit,
        offset: 0,
        params: None,
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(true),
    })
}
