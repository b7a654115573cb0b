//! A webhook (or Slack) receiver over real HTTP on 127.0.0.1:0: it records every request,
//! checks `X-Aims-Signature` with its own HMAC-SHA256 of the raw body (not the crate's helper),
//! and answers from a script (200 once the script is empty): plain statuses with headers, a
//! 10 MB body, an endless fast body, a slow trickle, or no answer at all.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures_util::stream;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A status with headers and a short body.
    With(u16, Vec<(&'static str, String)>, &'static str),
    /// A status and `bytes` bytes of body.
    Big(u16, usize),
    /// A status and a body that never ends, sent as fast as the client reads.
    Endless(u16),
    /// A status and a body of one byte every 100 ms, forever.
    Trickle(u16),
    /// Headers never come.
    Hang,
}

impl Reply {
    pub fn status(s: u16) -> Self {
        Self::With(s, Vec::new(), "")
    }
}

/// One request received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The signature header verified against the receiver's secret.
    pub signature_valid: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

#[derive(Default)]
struct ReceiverState {
    secret: Vec<u8>,
    script: VecDeque<Reply>,
    received: Vec<Received>,
}

/// The running receiver (it stops with the test's runtime).
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn start(secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ReceiverState {
            secret: secret.as_bytes().to_vec(),
            ..ReceiverState::default()
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, state }
    }

    /// Answers the next request with `reply`.
    pub fn push(&self, reply: Reply) {
        self.lock().script.push_back(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReceiverState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn handle(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        let signature_valid = verify(
            &s.secret,
            &body,
            headers
                .get("x-aims-signature")
                .and_then(|v| v.to_str().ok()),
        );
        s.received.push(Received {
            method,
            path: uri.path().to_owned(),
            headers,
            body,
            signature_valid,
        });
        s.script.pop_front().unwrap_or(Reply::status(200))
    };
    let build = |status: u16, body: Body| {
        Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .body(body)
            .unwrap()
    };
    match reply {
        Reply::With(status, extra, text) => {
            let mut r = build(status, Body::from(text));
            for (k, v) in extra {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            r
        }
        Reply::Big(status, bytes) => build(status, Body::from(vec![b'x'; bytes])),
        Reply::Endless(status) => {
            let chunk = Bytes::from(vec![b'y'; 64 * 1024]);
            let s = stream::repeat_with(move || Ok::<_, Infallible>(chunk.clone()));
            build(status, Body::from_stream(s))
        }
        Reply::Trickle(status) => {
            let s = stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, Infallible>(Bytes::from_static(b"z")), ()))
            });
            build(status, Body::from_stream(s))
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            build(200, Body::empty())
        }
    }
}
