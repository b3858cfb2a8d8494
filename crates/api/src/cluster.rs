//! `GET /v1/cluster`: this node's view of the cluster (its name, the live nodes, the
//! partitions it owns and what it committed). Only on a cluster node.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::{scope, Auth, Require};
use crate::error::ApiResult;
use plumbline_cluster::Membership;

#[derive(Clone)]
struct ClusterState {
    membership: Arc<Membership>,
    auth: Auth,
}

impl FromRef<ClusterState> for Auth {
    fn from_ref(s: &ClusterState) -> Auth {
        s.auth.clone()
    }
}

pub fn routes<S: Clone + Send + Sync + 'static>(
    membership: Arc<Membership>,
    auth: Auth,
) -> Router<S> {
    Router::new()
        .route("/v1/cluster", get(status))
        .with_state(ClusterState { membership, auth })
}

async fn status(_: Require<scope::Read>, State(s): State<ClusterState>) -> ApiResult<Json<Value>> {
    Ok(Json(s.membership.status().await))
}
