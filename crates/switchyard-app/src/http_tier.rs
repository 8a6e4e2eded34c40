//! The HTTP tier: a stateless server for the chat page, its assets, login/logout and a small
//! JSON API. All state lives in the session store, so any HTTP node can serve any request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::node::with_node_header;
use crate::store::{Backend, COUNTER_KEY, SESSION_COOKIE, USER_KEY};

/// How long a session lives without requests before it expires.
pub const SESSION_IDLE: time::Duration = time::Duration::hours(8);

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Where the page loads socket.io-client's browser build from.
pub const CLIENT_JS_ROUTE: &str = "/vendor/socket.io.min.js";
/// The command that installs the browser build, from the repository root.
pub const CLIENT_JS_INSTALL: &str = "npm ci --prefix crates/switchyard-app/web";

/// socket.io-client's browser build, read from where npm installed it (`--client-js`).
///
/// This repository holds no copy of third-party code: the client is a declared, pinned npm
/// dependency (`web/package.json`, `web/package-lock.json`). The file is read on the first
/// request that finds it and then kept in memory, so a running node never serves a file half
/// rewritten by a later `npm ci`, and a node started before `npm ci` starts serving it without
/// a restart. While it is missing the route answers 503 with [`ClientJs::missing_message`]
/// (and the page shows that text), never an empty script.
#[derive(Debug, Clone)]
pub struct ClientJs {
    path: PathBuf,
    loaded: Arc<tokio::sync::OnceCell<Bytes>>,
}

impl ClientJs {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            loaded: Arc::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is there now (a node logs the answer at start).
    pub fn check(&self) -> Result<(), String> {
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(_) => Err(self.missing_message("it is not a file")),
            Err(err) => Err(self.missing_message(&err.to_string())),
        }
    }

    /// What is wrong and how to fix it, for the log, the 503 body and the page.
    pub fn missing_message(&self, why: &str) -> String {
        format!(
            "socket.io-client's browser build is not installed: cannot read {} ({why}). \
             Run `{CLIENT_JS_INSTALL}` in the switchyard repository (or start the HTTP node \
             with --client-js PATH), then reload the page.",
            self.path.display()
        )
    }

    async fn load(&self) -> Result<Bytes, String> {
        self.loaded
            .get_or_try_init(|| async {
                tokio::fs::read(&self.path)
                    .await
                    .map(Bytes::from)
                    .map_err(|err| self.missing_message(&err.to_string()))
            })
            .await
            .cloned()
    }
}

#[derive(Debug)]
struct HttpState {
    node: String,
    client_js: ClientJs,
    backend: Backend,
}

type AppState = State<Arc<HttpState>>;

/// The HTTP tier's router for node `node`.
///
/// `/health` sits outside the session layer: probes never load or create sessions.
/// The session cookie is `HttpOnly`, `SameSite=Lax` (so a link from elsewhere still opens the
/// chat logged in) and not `Secure`, because the demo and the tests run over plain HTTP.
pub fn router(node: &str, backend: &Backend, client_js: ClientJs) -> anyhow::Result<Router> {
    let sessions = SessionManagerLayer::new(backend.store.clone())
        .with_name(SESSION_COOKIE)
        .with_secure(false)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE));
    let state = Arc::new(HttpState {
        node: node.to_owned(),
        client_js,
        backend: backend.clone(),
    });
    let app = Router::new()
        .route("/", get(index))
        .route("/login", post(login_form))
        .route("/logout", post(logout_form))
        .route("/api/login", post(login_json))
        .route("/api/logout", post(logout_json))
        .route("/api/me", get(me))
        .route("/api/counter", get(counter_get).post(counter_add))
        .layer(sessions)
        .route("/health", get(health))
        .route("/app.js", get(|| asset("text/javascript", APP_JS)))
        .route("/app.css", get(|| asset("text/css", APP_CSS)))
        .route(CLIENT_JS_ROUTE, get(serve_client_js))
        .with_state(state);
    with_node_header(app, node)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn serve_client_js(State(state): AppState) -> Response {
    match state.client_js.load().await {
        Ok(body) => ([(header::CONTENT_TYPE, "text/javascript")], body).into_response(),
        Err(problem) => {
            tracing::warn!("{}: {problem}", state.node);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                problem,
            )
                .into_response()
        }
    }
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

/// `ok <node>`, or `degraded <node>: <why>` while Redis is unreachable: 200 either way (see
/// `store::RedisHealth` for why a shared Redis being away does not take nodes out of service).
async fn health(State(state): AppState) -> Response {
    let body = match state.backend.degraded() {
        None => format!("ok {}\n", state.node),
        Some(problem) => format!("degraded {}: {problem}\n", state.node),
    };
    (StatusCode::OK, body).into_response()
}

/// The login form and JSON body: a user name, nothing else (this demo has no passwords).
#[derive(Debug, Deserialize)]
struct LoginRequest {
    user: String,
}

/// A user name is 1 to 32 letters, digits, `-`, `_` or `.`.
pub fn valid_user_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Errors the API reports as JSON `{"error": ...}` with a status.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<tower_sessions::session::Error> for ApiError {
    fn from(err: tower_sessions::session::Error) -> Self {
        tracing::error!(%err, "session store error");
        Self(
            StatusCode::SERVICE_UNAVAILABLE,
            "session store unavailable".into(),
        )
    }
}

/// Logs `name` in: a new session id (no fixation), the user name and a fresh counter.
async fn start_session(session: &Session, name: &str) -> Result<(), ApiError> {
    if !valid_user_name(name) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "user name must be 1-32 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    session.cycle_id().await?;
    session.insert(USER_KEY, name).await?;
    session.insert(COUNTER_KEY, 0_i64).await?;
    Ok(())
}

/// The page's login form: back to the page either way, with `?error=<why>` when the login
/// failed (a bad name, or the session store away), which the page shows next to the form; a
/// bare JSON error would leave the user on a dead end.
async fn login_form(session: Session, Form(req): Form<LoginRequest>) -> Response {
    match start_session(&session, req.user.trim()).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(ApiError(_, why)) => {
            Redirect::to(&format!("/?error={}", query_escape(&why))).into_response()
        }
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn login_json(
    State(state): AppState,
    session: Session,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    start_session(&session, req.user.trim()).await?;
    Ok(Json(json!({ "user": req.user.trim(), "node": state.node })).into_response())
}

async fn logout_form(session: Session) -> Result<Response, ApiError> {
    session.flush().await?;
    Ok(Redirect::to("/").into_response())
}

async fn logout_json(State(state): AppState, session: Session) -> Result<Response, ApiError> {
    session.flush().await?;
    Ok(Json(json!({ "user": null, "node": state.node })).into_response())
}

async fn me(State(state): AppState, session: Session) -> Result<Response, ApiError> {
    let user: Option<String> = session.get(USER_KEY).await?;
    let counter: Option<i64> = session.get(COUNTER_KEY).await?;
    Ok(Json(json!({ "user": user, "counter": counter, "node": state.node })).into_response())
}

/// The caller's user name, or 401.
async fn require_user(session: &Session) -> Result<String, ApiError> {
    session
        .get::<String>(USER_KEY)
        .await?
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "log in first".into()))
}

async fn counter_get(State(state): AppState, session: Session) -> Result<Response, ApiError> {
    require_user(&session).await?;
    let value: i64 = session.get(COUNTER_KEY).await?.unwrap_or(0);
    Ok(Json(json!({ "value": value, "node": state.node })).into_response())
}

/// Increments the session's counter. Read-modify-write on the session: two concurrent
/// increments from the same session may lose one, which is the usual session semantics.
async fn counter_add(State(state): AppState, session: Session) -> Result<Response, ApiError> {
    require_user(&session).await?;
    let value = session.get::<i64>(COUNTER_KEY).await?.unwrap_or(0) + 1;
    session.insert(COUNTER_KEY, value).await?;
    Ok(Json(json!({ "value": value, "node": state.node })).into_response())
}
