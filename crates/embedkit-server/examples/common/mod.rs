//! What the load examples (`loadtest`, `bench_serve`) share: a keep-alive HTTP/1.1
//! client light enough to run beside the server on a 2-core machine (no JSON parsing of
//! replies), percentiles, a child server that is stopped when dropped, and the machine's
//! facts printed with every figure.
#![allow(dead_code)]

pub mod families;

use std::process::Child;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `--name VALUE` from the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// A reply: its status and its body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A keep-alive HTTP/1.1 client; `key` is sent as a bearer token when set.
pub struct Client {
    pub port: u16,
    pub key: Option<String>,
    pub stream: Option<TcpStream>,
}

impl Client {
    pub fn new(port: u16, key: Option<&str>) -> Client {
        Client {
            port,
            key: key.map(str::to_string),
            stream: None,
        }
    }

    pub async fn post(&mut self, path: &str, body: &str) -> std::io::Result<Reply> {
        self.send("POST", path, body).await
    }

    pub async fn get(&mut self, path: &str) -> std::io::Result<Reply> {
        self.send("GET", path, "").await
    }

    async fn send(&mut self, method: &str, path: &str, body: &str) -> std::io::Result<Reply> {
        if self.stream.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port)).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let auth = match &self.key {
            Some(k) => format!("Authorization: Bearer {k}\r\n"),
            None => String::new(),
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             {auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let result = self.exchange(req.as_bytes()).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, req: &[u8]) -> std::io::Result<Reply> {
        let s = self.stream.as_mut().expect("connected above");
        s.write_all(req).await?;
        let mut buf = Vec::with_capacity(16384);
        let end = loop {
            read_more(s, &mut buf).await?;
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let mut body = buf.split_off(end + 4);
        if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            body = read_chunked(s, body).await?;
        } else {
            let len: usize = header("content-length:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while body.len() < len {
                read_more(s, &mut body).await?;
            }
            body.truncate(len);
        }
        if header("connection:").is_some_and(|v| v == "close") {
            self.stream = None;
        }
        Ok(Reply { status, body })
    }
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 65536];
    let n = s.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// A chunked body (some Python servers send one), `raw` being what has been read of it.
async fn read_chunked(s: &mut TcpStream, mut raw: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = loop {
            if let Some(i) = raw[at..].windows(2).position(|w| w == b"\r\n") {
                break at + i;
            }
            read_more(s, &mut raw).await?;
        };
        let size_text = String::from_utf8_lossy(&raw[at..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size {size_text:?}")))?;
        let data = line_end + 2;
        while raw.len() < data + size + 2 {
            read_more(s, &mut raw).await?;
        }
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&raw[data..data + size]);
        at = data + size + 2;
    }
}

/// The value below which a share `p` of `v` lies (nearest rank); 0 for no values.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A line of `/proc/PID/status` in MB (`VmRSS:`, `VmHWM:`).
pub fn rss_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU seconds a process (and the children it waited for) has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime, stime, cutime, cstime are fields 14-17 of the line, 12-15 after the name;
    // in clock ticks, which are 1/100 s on Linux's x86 ABI.
    (11..15)
        .filter_map(|i| fields.get(i)?.parse::<f64>().ok())
        .sum::<f64>()
        / 100.0
}

/// "AMD EPYC, 2 cores": the machine every figure is measured on.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores")
}

/// A server process, killed and reaped when dropped (also when the bench panics).
pub struct Server(pub Child);

impl Server {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `GET path` answers 200, for at most `limit`; false if it never does.
pub async fn wait_ready(port: u16, path: &str, limit: Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let mut c = Client::new(port, None);
        if c.get(path).await.is_ok_and(|r| r.status == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
