//! Downloads the binaries share: job inputs, specs and results, from `http(s)://`, a local file
//! (`file://` or a path: meaningful on one machine) or, for specs, a `data:` URI. Errors say what
//! failed and what to check.

use alloy::primitives::B256;

use crate::spec::RunSpec;

/// Largest download accepted (inputs of the largest matmul are 2 x 8,192 x 65,536 bytes).
pub const MAX_DOWNLOAD: u64 = 1 << 30;

/// The header a tenant authenticates a result download with: `<expiry>:<signature>`, the
/// signature (EIP-191) over [`result_auth_message`].
pub const AUTH_HEADER: &str = "x-gridlease-auth";

/// What a tenant signs to download the result of `lease` until `expiry` (unix seconds).
pub fn result_auth_message(lease: B256, expiry: u64) -> String {
    format!("gridlease result {lease} until {expiry}")
}

/// What a tenant signs to push the spec of `order` to a provider node until `expiry` (unix
/// seconds); see [`crate::spec::PUSH_URI`].
pub fn spec_auth_message(order: B256, expiry: u64) -> String {
    format!("gridlease spec {order} until {expiry}")
}

/// The [`AUTH_HEADER`] value `signer` gives for `lease`, valid for ten minutes.
pub fn result_auth(
    signer: &alloy::signers::local::PrivateKeySigner,
    lease: B256,
) -> Option<String> {
    signed_auth(signer, |expiry| result_auth_message(lease, expiry))
}

/// The [`AUTH_HEADER`] value `signer` gives to push the spec of `order`, valid for ten minutes.
pub fn spec_auth(signer: &alloy::signers::local::PrivateKeySigner, order: B256) -> Option<String> {
    signed_auth(signer, |expiry| spec_auth_message(order, expiry))
}

fn signed_auth(
    signer: &alloy::signers::local::PrivateKeySigner,
    message: impl Fn(u64) -> String,
) -> Option<String> {
    use alloy::signers::SignerSync;
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs()
        + 600;
    let sig = signer.sign_message_sync(message(expiry).as_bytes()).ok()?;
    Some(format!("{expiry}:{sig}"))
}

/// Download `uri`.
pub async fn fetch(uri: &str) -> Result<Vec<u8>, String> {
    fetch_with(uri, None).await
}

/// Download `uri`, sending `auth` as the [`AUTH_HEADER`] to http(s) servers.
pub async fn fetch_with(uri: &str, auth: Option<&str>) -> Result<Vec<u8>, String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        let client = alloy::transports::http::reqwest::Client::new();
        let mut req = client.get(uri);
        if let Some(a) = auth {
            req = req.header(AUTH_HEADER, a);
        }
        let resp = req.send().await.map_err(|e| {
            format!("cannot download {uri}: {e}; check the URI and that its server is up")
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(format!("{uri} answered {status}: {}", body.trim()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_DOWNLOAD) {
            return Err(format!("{uri} is larger than {MAX_DOWNLOAD} bytes"));
        }
        return Ok(resp
            .bytes()
            .await
            .map_err(|e| format!("download of {uri} broke off: {e}"))?
            .to_vec());
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// Fetch the run spec an order names (`specURI`) and check it against its `specHash`.
pub async fn spec(uri: &str, hash: B256) -> Result<RunSpec, String> {
    if uri == crate::spec::PUSH_URI {
        return Err(format!(
            "{uri}: the tenant pushes this spec to the provider's node; it is not published"
        ));
    }
    if uri.starts_with("data:") {
        return RunSpec::from_data_uri(uri, hash);
    }
    let bytes = fetch(uri).await?;
    let spec: RunSpec =
        serde_json::from_slice(&bytes).map_err(|e| format!("{uri}: not a run spec: {e}"))?;
    if spec.hash() != hash {
        return Err(format!(
            "{uri}: the spec does not match the order's spec hash"
        ));
    }
    Ok(spec)
}
