//! The few W3C WebDriver commands the review page's browser test uses, over reqwest
//! (https://www.w3.org/TR/webdriver2/): a session, navigation, CSS element lookup, clicks,
//! typing, text and attributes, a script, a screenshot. Smaller to build than a full
//! WebDriver client crate, and every command is one documented endpoint.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session.
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    /// `<driver>/session/<id>`.
    session: String,
}

/// An element of the current page.
pub struct Element {
    browser: Browser,
    id: String,
}

impl Browser {
    /// `POST /session` with `capabilities` as `alwaysMatch`.
    pub async fn start(driver: &str, capabilities: Value) -> Result<Browser, String> {
        let http = reqwest::Client::new();
        let answer = send(
            &http,
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(json!({"capabilities": {"alwaysMatch": capabilities}})),
        )
        .await?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {answer}"))?;
        Ok(Browser {
            http,
            session: format!("{driver}/session/{id}"),
        })
    }

    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        send(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .map(drop)
    }

    pub async fn find(&self, css: &str) -> Result<Element, String> {
        let v = self
            .cmd(reqwest::Method::POST, "/element", Some(locator(css)))
            .await?;
        self.element(&v)
    }

    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, String> {
        let v = self
            .cmd(reqwest::Method::POST, "/elements", Some(locator(css)))
            .await?;
        v.as_array()
            .ok_or_else(|| format!("not a list of elements: {v}"))?
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    /// Polls until `css` selects something (the page renders asynchronously).
    pub async fn wait_for(&self, css: &str, at_most: Duration) -> Result<Element, String> {
        let deadline = Instant::now() + at_most;
        loop {
            match self.find(css).await {
                Ok(e) => return Ok(e),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("`{css}` did not appear within {at_most:?}: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Runs `script` in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Result<Value, String> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The viewport as PNG bytes.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let b64 = v.as_str().ok_or_else(|| format!("no screenshot in {v}"))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| e.to_string())
    }

    pub async fn close(self) -> Result<(), String> {
        self.cmd(reqwest::Method::DELETE, "", None).await.map(drop)
    }

    fn element(&self, v: &Value) -> Result<Element, String> {
        let id = v[ELEMENT]
            .as_str()
            .ok_or_else(|| format!("not an element reference: {v}"))?;
        Ok(Element {
            browser: self.clone(),
            id: id.to_string(),
        })
    }
}

impl Element {
    async fn cmd(
        &self,
        method: reqwest::Method,
        what: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        self.browser
            .cmd(method, &format!("/element/{}{what}", self.id), body)
            .await
    }

    pub async fn click(&self) -> Result<(), String> {
        self.cmd(reqwest::Method::POST, "/click", Some(json!({})))
            .await
            .map(drop)
    }

    pub async fn clear(&self) -> Result<(), String> {
        self.cmd(reqwest::Method::POST, "/clear", Some(json!({})))
            .await
            .map(drop)
    }

    pub async fn send_keys(&self, text: &str) -> Result<(), String> {
        self.cmd(reqwest::Method::POST, "/value", Some(json!({"text": text})))
            .await
            .map(drop)
    }

    pub async fn text(&self) -> Result<String, String> {
        let v = self.cmd(reqwest::Method::GET, "/text", None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub async fn attr(&self, name: &str) -> Result<Option<String>, String> {
        let v = self
            .cmd(reqwest::Method::GET, &format!("/attribute/{name}"), None)
            .await?;
        Ok(v.as_str().map(str::to_string))
    }
}

fn locator(css: &str) -> Value {
    json!({"using": "css selector", "value": css})
}

/// One command: the answer's `value`, or the WebDriver error it carries.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{url}: {} {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or_default()
        ))
    }
}
