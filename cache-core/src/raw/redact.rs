//! Secrets out of logs.

/// `scheme://user:password@host/...?password=...` with every password replaced by
/// `***`, for Debug output and logs of backend configs. A user-info without `:` is
/// masked whole (some schemes read it as the password), and so is everything before
/// an `@` that only comes after a `/`, `?` or `#` (a password written unencoded);
/// query parameters whose names hold `password`, `secret` or `token` are masked.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return "<unparsable url>".into();
    };
    let mut rest = &url[scheme_end..];
    let mut out = url[..scheme_end].to_owned();
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if !rest[..authority_end].contains('@') {
        if let Some(at) = rest.rfind('@') {
            // An `@` only past a `/`, `?` or `#`: a password with one of those written
            // unencoded (`redis://:pa#ss@host`) looks so, as does an `@` in a query.
            // Everything up to it is masked: more than needed in the second case, never
            // a secret shown in the first.
            out.push_str("***@");
            rest = &rest[at + 1..];
        }
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str("***"),
            }
            out.push_str(&rest[at..authority_end]);
        }
        None => out.push_str(&rest[..authority_end]),
    }
    let tail = &rest[authority_end..];
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if secret_key(k) => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

/// A query parameter that may carry a secret (`password`, `sslpassword`,
/// `client_secret`, `AWS_SESSION_TOKEN`, ...).
fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token"]
        .iter()
        .any(|s| key.contains(s))
}
