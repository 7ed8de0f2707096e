//! AWS Signature Version 4, checked the way AWS checks it: the mock rebuilds the canonical request from
//! what actually arrived (the path URI-encoded once more, as for every service but S3, so a model id sent
//! as `%3A` is signed as `%253A`), signs it with the configured secret, and compares.

use std::time::{SystemTime, UNIX_EPOCH};

use super::crypto::{hex, hmac_sha256, sha256};
use super::{AwsCredentials, Received};

/// Why a request's signature is refused: the `x-amzn-ErrorType` and the message AWS sends with 403.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `InvalidSignatureException`, `UnrecognizedClientException`, `MissingAuthenticationTokenException`, ...
    pub kind: &'static str,
    /// AWS's message.
    pub message: String,
}

fn refuse(kind: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { kind, message: message.into() }
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Verifies `req`'s `Authorization: AWS4-HMAC-SHA256 ...` for `service` with `creds`.
pub fn verify(req: &Received, creds: &AwsCredentials, service: &str) -> Result<(), Refusal> {
    let auth = req
        .header("authorization")
        .ok_or_else(|| refuse("MissingAuthenticationTokenException", "Missing Authentication Token"))?;
    let fields = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| refuse("IncompleteSignatureException", format!("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={auth}")))?;
    let field = |name: &str| fields.split(',').map(str::trim).find_map(|f| f.strip_prefix(name)).map(str::to_string);
    let (Some(credential), Some(signed), Some(signature)) =
        (field("Credential="), field("SignedHeaders="), field("Signature="))
    else {
        return Err(refuse("IncompleteSignatureException", format!("Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization={auth}")));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(refuse(
            "IncompleteSignatureException",
            format!("Credential should be scoped to a valid region. Credential={credential}"),
        ));
    }
    if scope[0] != creds.access_key_id {
        return Err(refuse("UnrecognizedClientException", "The security token included in the request is invalid."));
    }
    if scope[2] != creds.region || scope[3] != service {
        return Err(refuse(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region and service: {}/{service}, not {}/{}",
                creds.region, scope[2], scope[3]
            ),
        ));
    }
    let amz_date = req.header("x-amz-date").ok_or_else(|| {
        refuse(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    })?;
    if !amz_date.starts_with(scope[1]) {
        return Err(refuse("InvalidSignatureException", format!("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'", scope[1], &amz_date[..amz_date.len().min(8)])));
    }
    let signed_names: Vec<&str> = signed.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !signed_names.contains(&required) {
            return Err(refuse(
                "InvalidSignatureException",
                format!("'{required}' must be a 'SignedHeader' in the AWS Authorization."),
            ));
        }
    }
    let when = parse_amz_date(amz_date).ok_or_else(|| {
        refuse("IncompleteSignatureException", format!("Date must be in ISO-8601 'basic format'. Got '{amz_date}'."))
    })?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if now.abs_diff(when) > 15 * 60 {
        return Err(refuse(
            "InvalidSignatureException",
            format!("Signature expired: {amz_date} is now earlier or later than the allowed 15 minutes."),
        ));
    }
    let string_to_sign = string_to_sign(req, &signed_names, &signed, amz_date, &scope[1..4].join("/"));
    let mut key = hmac_sha256(format!("AWS4{}", creds.secret_access_key).as_bytes(), scope[1].as_bytes());
    for part in [scope[2], scope[3], "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let expected = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    if expected != signature {
        return Err(refuse("InvalidSignatureException", MISMATCH));
    }
    Ok(())
}

/// The string to sign, from the canonical request built out of what arrived.
pub fn string_to_sign(req: &Received, signed_names: &[&str], signed: &str, amz_date: &str, scope: &str) -> String {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let mut canonical = format!("{}\n{}\n{}\n", req.method, uri_encode(path, false), canonical_query(query));
    for name in signed_names {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    canonical.push_str(&format!("\n{signed}\n{}", hex(&sha256(&req.raw))));
    format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}/aws4_request\n{}", hex(&sha256(canonical.as_bytes())))
}

/// Percent-encodes every byte but the unreserved ones (and `/` unless `slash`).
pub fn uri_encode(s: &str, slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (b == b'/' && !slash) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), true), uri_encode(&percent_decode(v), true))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `20261123T174500Z` as Unix seconds.
fn parse_amz_date(s: &str) -> Option<u64> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published SigV4 example (IAM `ListUsers`, secret `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`).
    #[test]
    fn matches_the_published_example() {
        let req = Received {
            method: "GET".into(),
            path: "/?Action=ListUsers&Version=2010-05-08".into(),
            headers: vec![
                ("content-type".into(), "application/x-www-form-urlencoded; charset=utf-8".into()),
                ("host".into(), "iam.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
            ],
            body: serde_json::Value::Null,
            raw: Vec::new(),
        };
        let sts = string_to_sign(
            &req,
            &["content-type", "host", "x-amz-date"],
            "content-type;host;x-amz-date",
            "20150830T123600Z",
            "20150830/us-east-1/iam",
        );
        assert!(sts.ends_with("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"), "{sts}");
        let mut key = hmac_sha256(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20150830");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        assert_eq!(
            hex(&hmac_sha256(&key, sts.as_bytes())),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(uri_encode("/model/a.b-v1%3A0/converse", false), "/model/a.b-v1%253A0/converse");
    }
}
