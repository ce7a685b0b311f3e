//! Push: `GET /api/v1/events/`, server-sent events.
//!
//! Each event is `event: manifest-changed` with `data: {"environment", "etag", "serial"}`,
//! the new ETag of the environment's unified manifest. `?environment=NAME` follows one
//! environment (an unknown one is a 404); without it the stream carries every environment.
//!
//! On connecting, a client first gets the current notice of each environment it follows, so
//! a change made while it was not connected is never missed: it compares the ETag with the
//! one it holds. A client too slow to keep up skips to the current notices the same way. A
//! comment line keeps the connection alive every [`KEEP_ALIVE`]. Streams end when the
//! publisher closes them ([`crate::state::Publisher::close_streams`], at shutdown).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt as _};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::{requested_environment, unknown_environment};
use crate::state::{AppState, ManifestChanged, Publisher};

/// The SSE event name of a notice.
pub const EVENT_NAME: &str = "manifest-changed";

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `/api/v1/events/` handler.
pub async fn events(State(state): State<AppState>, request: Request) -> Response {
    let environment = match requested_environment(request.uri()) {
        Ok(environment) => environment,
        Err(invalid) => return invalid.into_response(),
    };
    let publisher = Arc::clone(state.publisher());
    if let Some(name) = &environment
        && !publisher.has_environment(name)
    {
        return unknown_environment(name);
    }
    let events = notices(publisher, environment).map(|notice| Ok::<_, Infallible>(event(&notice)));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The notices for a subscriber following `environment` (every environment when `None`):
/// first the current one of each environment followed, then each change; after falling
/// behind, the current ones again. Ends when the publisher closes its streams.
pub fn notices(
    publisher: Arc<Publisher>,
    environment: Option<String>,
) -> impl Stream<Item = Arc<ManifestChanged>> + Send + 'static {
    // Subscribe before reading the current state, so that nothing installed in between is
    // lost (at worst a notice comes twice).
    let receiver = publisher.subscribe();
    let closing = publisher.closing();
    let pending: VecDeque<Arc<ManifestChanged>> =
        publisher.current_notices(environment.as_deref()).into();
    let subscriber = Subscriber {
        publisher,
        environment,
        receiver,
        closing,
        pending,
    };
    stream::unfold(subscriber, |mut subscriber| async move {
        let notice = subscriber.next().await?;
        Some((notice, subscriber))
    })
}

struct Subscriber {
    publisher: Arc<Publisher>,
    environment: Option<String>,
    receiver: broadcast::Receiver<Arc<ManifestChanged>>,
    closing: watch::Receiver<bool>,
    pending: VecDeque<Arc<ManifestChanged>>,
}

impl Subscriber {
    /// The next notice for this subscriber; `None` when the stream ends.
    async fn next(&mut self) -> Option<Arc<ManifestChanged>> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(notice) = self.pending.pop_front() {
                return Some(notice);
            }
            tokio::select! {
                biased;
                changed = self.closing.changed() => {
                    // A dropped sender also ends the stream.
                    if changed.is_err() {
                        return None;
                    }
                }
                received = self.receiver.recv() => match received {
                    Ok(notice) => {
                        if self.follows(&notice.environment) {
                            return Some(notice);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "push subscriber fell behind; sending the current state");
                        self.pending = self
                            .publisher
                            .current_notices(self.environment.as_deref())
                            .into();
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    fn follows(&self, environment: &str) -> bool {
        self.environment
            .as_deref()
            .is_none_or(|name| name == environment)
    }
}

fn event(notice: &ManifestChanged) -> Event {
    // Serialising three plain fields cannot fail.
    let data = serde_json::to_string(notice).unwrap_or_default();
    Event::default().event(EVENT_NAME).data(data)
}
