//! AWS Signature Version 4 (header signing), as Bedrock needs: canonical request, string to sign, the
//! derived key chain, and the `authorization` header. Checked against AWS's published test-suite vectors.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// AWS credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: String,
    /// A session token (temporary credentials).
    pub session_token: Option<String>,
}

/// What to sign.
#[derive(Debug, Clone)]
pub struct Signing<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path as sent (already URI-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    /// The headers to sign (names in any case; `host` and `x-amz-date` must be among them).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: &'a [u8],
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
    /// The service, e.g. `bedrock`.
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the value of `x-amz-date`.
    pub amz_date: &'a str,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// URI-encodes per SigV4: unreserved characters kept, everything else `%XX`; `/` kept when `path` is set.
pub fn uri_encode(text: &str, path: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if path => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
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

/// The `authorization` header value for `signing` with `credentials`.
pub fn authorization(signing: &Signing<'_>, credentials: &Credentials) -> String {
    let mut headers: Vec<(String, String)> = signing
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    headers.sort();
    let signed_headers = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    // Services other than S3 encode each path segment once more.
    let canonical_uri = if signing.path.is_empty() { "/".to_string() } else { uri_encode(signing.path, true) };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        signing.method,
        canonical_uri,
        canonical_query(signing.query),
        canonical_headers,
        signed_headers,
        sha256_hex(signing.payload)
    );
    let date = &signing.amz_date[..8.min(signing.amz_date.len())];
    let scope = format!("{date}/{}/{}/aws4_request", signing.region, signing.service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{}\n{scope}\n{}", signing.amz_date, sha256_hex(canonical_request.as_bytes()));
    let k_date = hmac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, signing.region.as_bytes());
    let k_service = hmac(&k_region, signing.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

/// `YYYYMMDDTHHMMSSZ` for Unix seconds.
pub fn amz_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    /// Method, query, headers, payload, expected end of the header.
    type Vector<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8], &'a str);

    /// AWS's SigV4 test suite (`aws-sig-v4-test-suite`): get-vanilla, post-vanilla, get-vanilla-query-order-key,
    /// post-x-www-form-urlencoded.
    #[test]
    fn matches_the_aws_test_suite() {
        let date = "20150830T123600Z";
        let table: &[Vector<'_>] = &[
            (
                "GET",
                "",
                &[("Host", "example.amazonaws.com"), ("X-Amz-Date", date)],
                b"",
                "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "POST",
                "",
                &[("Host", "example.amazonaws.com"), ("X-Amz-Date", date)],
                b"",
                "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "GET",
                "Param2=value2&Param1=value1",
                &[("Host", "example.amazonaws.com"), ("X-Amz-Date", date)],
                b"",
                "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
            (
                "POST",
                "",
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Host", "example.amazonaws.com"),
                    ("X-Amz-Date", date),
                ],
                b"Param1=value1",
                "SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            ),
        ];
        for (method, query, headers, payload, expected) in table {
            let signing = Signing {
                method,
                path: "/",
                query,
                headers,
                payload,
                region: "us-east-1",
                service: "service",
                amz_date: date,
            };
            let got = authorization(&signing, &example());
            assert_eq!(
                got,
                format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, {expected}"),
                "{method} ?{query}"
            );
        }
    }

    #[test]
    fn path_segments_are_encoded_again_and_dates_format() {
        assert_eq!(uri_encode("/model/a.b-v1%3A0/converse", true), "/model/a.b-v1%253A0/converse");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    }
}
