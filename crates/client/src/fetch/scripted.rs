//! A scripted [`HttpClient`] for tests: it answers from a list and records every request.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{HttpClient, HttpError, HttpResponse};

/// One request seen by a [`ScriptedHttpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The URL.
    pub url: String,
    /// The extra headers given.
    pub headers: Vec<(String, String)>,
    /// The body (empty for `GET`).
    pub body: Vec<u8>,
    /// The timeout given.
    pub timeout: Duration,
}

/// An [`HttpClient`] that gives its scripted replies in order, whatever the request, and
/// records the requests. Once the script is used up, every request fails with
/// [`HttpError::Connect`].
#[derive(Debug, Default)]
pub struct ScriptedHttpClient {
    inner: Mutex<Script>,
}

#[derive(Debug, Default)]
struct Script {
    replies: VecDeque<Result<HttpResponse, HttpError>>,
    requests: Vec<RecordedRequest>,
}

impl ScriptedHttpClient {
    /// A client that gives `replies` in order.
    pub fn new(
        replies: impl IntoIterator<Item = Result<HttpResponse, HttpError>>,
    ) -> ScriptedHttpClient {
        ScriptedHttpClient {
            inner: Mutex::new(Script {
                replies: replies.into_iter().collect(),
                requests: Vec::new(),
            }),
        }
    }

    /// Adds a reply at the end of the script.
    pub fn push(&self, reply: Result<HttpResponse, HttpError>) {
        self.lock().replies.push_back(reply);
    }

    /// The requests made so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// How many scripted replies are left.
    pub fn remaining(&self) -> usize {
        self.lock().replies.len()
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        // A panic elsewhere while holding the lock leaves the script usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn answer(&self, request: RecordedRequest) -> Result<HttpResponse, HttpError> {
        let mut script = self.lock();
        let url = request.url.clone();
        script.requests.push(request);
        script
            .replies
            .pop_front()
            .unwrap_or(Err(HttpError::Connect {
                url,
                message: "the scripted client has no reply left".to_owned(),
            }))
    }
}

impl HttpClient for ScriptedHttpClient {
    fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        self.answer(RecordedRequest {
            method: "GET",
            url: url.to_owned(),
            headers: headers.to_vec(),
            body: Vec::new(),
            timeout,
        })
    }

    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        self.answer(RecordedRequest {
            method: "POST",
            url: url.to_owned(),
            headers: headers.to_vec(),
            body,
            timeout,
        })
    }
}
