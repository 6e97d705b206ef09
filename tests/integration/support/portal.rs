//! A fake portal on 127.0.0.1: real HTTP (axum), answering with whatever the test's responder
//! says, and recording every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

/// One request as the portal saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The national portal's `params` JSON, when the request carries one.
    pub fn dvcqg_params(&self) -> Option<serde_json::Value> {
        self.form
            .get("params")
            .and_then(|p| serde_json::from_str(p).ok())
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>, content_type: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply::ok(body, "application/json; charset=utf-8")
    }
    pub fn xml(body: impl Into<Vec<u8>>) -> Reply {
        Reply::ok(body, "text/xml; charset=utf-8")
    }
    pub fn status(status: u16) -> Reply {
        let body = if status == 304 {
            Vec::new()
        } else {
            format!("error {status}").into_bytes()
        };
        Reply {
            status,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
        }
    }
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub type Responder = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct FakePortal {
    pub base_url: String,
    responder: Arc<Mutex<Responder>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakePortal {
    pub fn start(responder: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakePortal {
        let responder: Arc<Mutex<Responder>> = Arc::new(Mutex::new(Arc::new(responder)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let state = (responder.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                        let (responder, seen) = state.clone();
                        async move { answer(responder, seen, method, uri, headers, body).await }
                    },
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        FakePortal {
            base_url: format!("http://{addr}"),
            responder,
            seen,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Changes what the portal answers from now on.
    pub fn respond(&self, responder: impl Fn(&Seen) -> Reply + Send + Sync + 'static) {
        *self.responder.lock().unwrap() = Arc::new(responder);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakePortal {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn answer(
    responder: Arc<Mutex<Responder>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parse = |text: &str| -> HashMap<String, String> {
        url::form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect()
    };
    let request = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: parse(uri.query().unwrap_or("")),
        form: parse(&String::from_utf8_lossy(&body)),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
    };
    let reply = {
        let responder = responder.lock().unwrap().clone();
        responder(&request)
    };
    seen.lock().unwrap().push(request);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (k, v) in &reply.headers {
        response = response.header(k, v);
    }
    response.body(Body::from(reply.body)).unwrap()
}

/// Answers the national portal's list service from `rows`, paged by the request's
/// `p_Page_Index` / `p_Page_Size`, every row carrying `TOTAL_RECORDS` as the real portal does.
pub fn dvcqg_list(rows: Vec<serde_json::Value>) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |seen: &Seen| {
        let Some(params) = seen.dvcqg_params() else {
            return Reply::status(400);
        };
        if seen.path != "/jsp/rest.jsp" || params["service"] != "get_ds_tthc_da_cong_bo_dvc_service"
        {
            return Reply::status(404);
        }
        let page = params["p_Page_Index"].as_u64().unwrap_or(1) as usize;
        let size = params["p_Page_Size"].as_u64().unwrap_or(1000) as usize;
        let total = rows.len().to_string();
        let slice: Vec<serde_json::Value> = rows
            .iter()
            .skip((page - 1) * size)
            .take(size)
            .map(|r| {
                let mut r = r.clone();
                r["TOTAL_RECORDS"] = serde_json::Value::String(total.clone());
                r
            })
            .collect();
        Reply::json(serde_json::to_vec_pretty(&slice).unwrap())
    }
}

/// Answers `LayDanhSachTTHC` from a page function (1-based page, page size) → XML body.
pub fn lgsp_list(
    page_body: impl Fn(u64, u64) -> String + Send + Sync + 'static,
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |seen: &Seen| {
        if seen.path != "/LayDanhSachTTHC" {
            return Reply::status(404);
        }
        let page = seen
            .query
            .get("TrangHienTai")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let size = seen
            .query
            .get("SoBanGhi")
            .and_then(|p| p.parse().ok())
            .unwrap_or(100);
        Reply::xml(page_body(page, size))
    }
}
