//! The base URL rule against every trick we know of, and a property test against the parser's
//! own idea of the host.

use super::{check_url, is_loopback, BaseUrl};
use proptest::prelude::*;
use url::Url;

/// Accepted as loopback without `--allow-http`, with the URL the client then uses.
const LOOPBACK: &[(&str, &str)] = &[
    ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
    ("http://127.0.0.1:3000/", "http://127.0.0.1:3000"),
    ("http://localhost:3000/", "http://localhost:3000"),
    ("http://LOCALHOST", "http://localhost"),
    ("HTTP://127.0.0.1", "http://127.0.0.1"),
    ("http://[::1]:8080", "http://[::1]:8080"),
    ("http://[::ffff:127.0.0.1]", "http://[::ffff:7f00:1]"),
    (
        "http://[0:0:0:0:0:ffff:7f00:1]:9",
        "http://[::ffff:7f00:1]:9",
    ),
    ("http://127.1", "http://127.0.0.1"),
    ("http://0x7f.1/", "http://127.0.0.1"),
    ("http://2130706433/", "http://127.0.0.1"),
    ("http://0177.0.0.1", "http://127.0.0.1"),
    ("http://127.255.255.254", "http://127.255.255.254"),
    ("  http://127.0.0.1:3000  ", "http://127.0.0.1:3000"),
    ("http://127.0.0.1:3000/alga", "http://127.0.0.1:3000/alga"),
    // IDNA maps full-width letters and ideographic full stops before the host is decided on.
    ("http://ｌｏｃａｌｈｏｓｔ:3000", "http://localhost:3000"),
    ("http://127。0。0。1", "http://127.0.0.1"),
    ("http://127.0.0.1:80/", "http://127.0.0.1"),
];

/// Refused without `--allow-http` (and with it: only those marked `true` pass).
const REMOTE: &[(&str, bool)] = &[
    ("http://psa.example.com", true),
    ("http://127.0.0.1.evil.com", true),
    ("http://localhost.evil.com", true),
    ("http://evil.com/127.0.0.1", true),
    ("http://evil.com:80/localhost", true),
    ("HTTP://PSA.EXAMPLE.COM", true),
    ("http://localhost.", true),
    ("http://api.localhost", true),
    ("http://0.0.0.0:3000", true),
    ("http://[::]:3000", true),
    ("http://[::127.0.0.1]", true), // IPv4-compatible, not mapped: not loopback
    ("http://[::ffff:10.0.0.1]", true),
    ("http://128.0.0.1", true),
    ("http://126.255.255.255", true),
    ("http://lоcalhost", true), // Cyrillic о
    ("http://evil.com\t", true),
    // Credentials: refused even with --allow-http.
    ("http://127.0.0.1:80@backup.example.com/", false),
    ("http://127.0.0.1@backup.example.com", false),
    ("http://localhost:3000@evil.com", false),
    ("http://[::1]@evil.com", false),
    ("http://evil.com@127.0.0.1", false),
    ("http://x:y@127.0.0.1:3000", false),
    ("http://127.0.0.1%3A80@evil.com", false),
    ("http://@evil.com@127.0.0.1", false),
    ("http://127.0.0.1\t:80@evil.com", false),
    ("http://127.0.0.1\n@evil.com", false),
    // Encoded separators and backslashes.
    ("http://127.0.0.1%40evil.com", false),
    ("http://127.0.0.1%2f@evil.com", false),
    ("http://127.0.0.1\\@evil.com", false),
    ("http://evil.com\\@127.0.0.1", false),
    ("http:\\\\127.0.0.1", false),
    // Query and fragment (also where they hold an `@`).
    ("http://evil.com?@127.0.0.1", false),
    ("http://evil.com#@127.0.0.1", false),
    ("http://127.0.0.1/?@evil.com", false),
    ("http://127.0.0.1/#@evil.com", false),
    // Not http(s), or no host.
    ("ftp://127.0.0.1", false),
    ("file:///etc/passwd", false),
    ("127.0.0.1:3000", false),
    ("localhost:3000", false),
    ("http://", false),
    ("", false),
];

#[test]
fn loopback_urls_pass_and_the_client_gets_the_checked_serialization() {
    for (raw, client) in LOOPBACK {
        let checked = check_url(raw, false).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        assert_eq!(checked.as_str(), *client, "{raw:?}");
        assert_same_host_after_appending(&checked);
    }
}

#[test]
fn remote_and_tricky_urls_are_refused_without_allow_http() {
    for (raw, allowed_with_flag) in REMOTE {
        let refused = check_url(raw, false);
        assert!(refused.is_err(), "{raw:?} passed as {refused:?}");
        assert_eq!(
            check_url(raw, true).is_ok(),
            *allowed_with_flag,
            "{raw:?} with --allow-http"
        );
    }
}

/// The parser skips extra slashes after a special scheme: the real host is 127.0.0.1.
#[test]
fn an_extra_slash_does_not_move_the_host() {
    let checked = check_url("http:///127.0.0.1", false).unwrap();
    assert_eq!(checked.as_str(), "http://127.0.0.1");
}

#[test]
fn https_passes_for_any_host_but_never_with_credentials() {
    assert!(check_url("https://psa.example.com", false).is_ok());
    assert!(check_url("HTTPS://psa.example.com:8443/", false).is_ok());
    for raw in [
        "https://user@psa.example.com",
        "https://user:secret-key@psa.example.com",
        "https://:secret-key@psa.example.com",
    ] {
        let err = check_url(raw, true).unwrap_err().to_string();
        assert!(
            err.contains("ALGA_API_KEY") && err.contains("--api-key-file"),
            "{err}"
        );
        assert!(!err.contains("secret-key"), "the password is echoed: {err}");
        assert!(err.contains("https://psa.example.com/"), "{err}");
    }
}

#[test]
fn refusals_say_why_without_echoing_anything_after_an_at_sign() {
    let plain = check_url("http://psa.example.com", false)
        .unwrap_err()
        .to_string();
    assert!(
        plain.contains("--allow-http") && plain.contains("psa.example.com"),
        "{plain}"
    );
    let query = check_url("http://127.0.0.1/?k=1", false)
        .unwrap_err()
        .to_string();
    assert!(query.contains("query or fragment"), "{query}");
    let bad = check_url("http://k3y@[::1", false).unwrap_err().to_string();
    assert!(!bad.contains("k3y"), "{bad}");
    let slash = check_url("http://127.0.0.1\\x", false)
        .unwrap_err()
        .to_string();
    assert!(slash.contains("backslash"), "{slash}");
    let scheme = check_url("ftp://127.0.0.1", false).unwrap_err().to_string();
    assert!(scheme.contains("https://"), "{scheme}");
}

/// The client appends API paths to `as_str()`; reqwest parses the result with the same crate.
fn assert_same_host_after_appending(checked: &BaseUrl) {
    let request = Url::parse(&format!("{}/api/v1/tickets", checked.as_str())).unwrap();
    assert_eq!(request.host(), checked.url().host(), "{checked:?}");
    assert_eq!(
        request.port_or_known_default(),
        checked.url().port_or_known_default()
    );
    assert_eq!(request.username(), "");
    assert_eq!(request.password(), None);
}

/// Loopback decided independently of [`is_loopback`]: the std parser on the serialized host.
fn oracle_is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.octets()[0] == 127,
        Ok(std::net::IpAddr::V6(v6)) => {
            v6 == std::net::Ipv6Addr::LOCALHOST
                || matches!(v6.segments(), [0, 0, 0, 0, 0, 0xffff, hi, _] if hi >> 8 == 127)
        }
        Err(_) => host == "localhost",
    }
}

/// Pieces that URL tricks are made of.
fn piece() -> impl Strategy<Value = String> {
    let fixed: Vec<&'static str> = vec![
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "2130706433",
        "localhost",
        "LocalHost",
        "localhost.",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "evil.com",
        "example.com",
        ".evil",
        "@",
        ":",
        ":80",
        "%40",
        "%2f",
        "%3a",
        "%2e",
        "\\",
        "/",
        "//",
        "#",
        "?",
        ".",
        " ",
        "\t",
        "\n",
        "[",
        "]",
        "xn--",
        "ｌｏｃａｌｈｏｓｔ",
        "。",
        "0",
        "user:pass",
        "%00",
    ];
    prop_oneof![
        3 => proptest::sample::select(fixed).prop_map(str::to_string),
        1 => "[a-z0-9.:@%/\\\\#?\\[\\]-]{1,6}",
    ]
}

fn scheme() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "http://",
        "HTTP://",
        "hTtP://",
        "http:",
        "http:/",
        "http:\\\\",
        " http://",
        "http:///",
        "https://",
        "",
    ])
}

/// Free-form strings of pieces, and the shape of the known bypass: `<host>[:port]<sep><host>`.
fn url_like() -> impl Strategy<Value = String> {
    let free = (scheme(), proptest::collection::vec(piece(), 0..7))
        .prop_map(|(s, parts)| format!("{s}{}", parts.concat()));
    let seps = vec![
        "@", ":@", "%40", "\\@", "/@", "?@", "#@", "\t@", ".", ":80@", "@@",
    ];
    let shaped = (
        scheme(),
        piece(),
        proptest::option::of(0u16..=65535),
        proptest::sample::select(seps),
        piece(),
        proptest::collection::vec(piece(), 0..2),
    )
        .prop_map(|(s, a, port, sep, b, tail)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{s}{a}{port}{sep}{b}{}", tail.concat())
        });
    prop_oneof![free, shaped]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Without `--allow-http`, nothing passes whose real host (as `url::Url` parses it) is not
    /// loopback, unless it is https; nothing with credentials passes at all; and the URL the
    /// client uses has the host that was checked.
    #[test]
    fn no_remote_plain_http_ever_passes(raw in url_like()) {
        if let Ok(checked) = check_url(&raw, false) {
            let real = Url::parse(&raw).expect("a checked url parses");
            prop_assert_eq!(real.host(), checked.url().host());
            prop_assert!(real.username().is_empty() && real.password().is_none());
            let host = real.host_str().unwrap_or_default().to_string();
            prop_assert!(
                real.scheme() == "https" || oracle_is_loopback(&host),
                "{:?} passed with host {:?}", raw, host
            );
            prop_assert_eq!(is_loopback(&real), oracle_is_loopback(&host));
            assert_same_host_after_appending(&checked);
        }
    }

    /// Credentials never pass, whatever the host, the scheme or `--allow-http`.
    #[test]
    fn credentials_never_pass(raw in url_like(), allow in any::<bool>()) {
        if let Ok(real) = Url::parse(&raw) {
            if !real.username().is_empty() || real.password().is_some() {
                prop_assert!(check_url(&raw, allow).is_err(), "{:?}", raw);
            }
        }
    }
}
