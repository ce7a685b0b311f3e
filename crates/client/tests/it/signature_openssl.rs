//! Differential test of content signatures against the `openssl` command line.
//!
//! OpenSSL signs and verifies DER-encoded ECDSA signatures over the message itself, so the
//! message here is `"Content-Signature:\0" ‖ data`, and raw `r ‖ s` is converted to and from
//! DER. When no `openssl` binary is on the PATH these tests print that they did not run (CI
//! installs it).

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flightdeck_client::signature::{
    CONTENT_SIGNATURE_PREFIX, KeyId, PublicKey, SigningKey, TrustedKeys, verify,
};

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        eprintln!(
            "NOT RUN: no `openssl` binary on the PATH; the OpenSSL differential test of content \
             signatures did not run"
        );
    }
    found
}

/// Runs `openssl ARGS…` in `dir`; returns whether it succeeded, and its output.
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn message(data: &[u8]) -> Vec<u8> {
    [CONTENT_SIGNATURE_PREFIX, data].concat()
}

fn raw_to_der(signature: &str) -> Vec<u8> {
    let raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let signature = p384::ecdsa::Signature::from_slice(&raw).unwrap();
    signature.to_der().as_bytes().to_vec()
}

fn der_to_raw(der: &[u8]) -> String {
    let signature = p384::ecdsa::Signature::from_der(der).unwrap();
    URL_SAFE_NO_PAD.encode(signature.to_bytes())
}

const DATA: &[&[u8]] = &[
    b"",
    b"hello",
    br#"{"action":"preference-rollout","id":101,"name":"D\u00e9ploiement"}"#,
    &[0u8, 255, 10, 13],
];

#[test]
fn openssl_verifies_our_signatures() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_pem(
        "test",
        &String::from_utf8(
            Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-384",
                ])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap(),
    )
    .unwrap();
    let public = dir.path().join("public.pem");
    std::fs::write(&public, key.public_key().to_spki_pem().unwrap()).unwrap();
    // Our PKCS#8 output is a key OpenSSL reads, and derives the same public key from.
    std::fs::write(
        dir.path().join("private.pem"),
        key.to_pkcs8_pem().unwrap().as_bytes(),
    )
    .unwrap();
    let (ok, derived) = openssl(dir.path(), &["pkey", "-in", "private.pem", "-pubout"]);
    assert!(ok, "{derived}");
    assert_eq!(derived, key.public_key().to_spki_pem().unwrap());

    for data in DATA {
        let signature = key.sign(data).unwrap();
        std::fs::write(dir.path().join("msg.bin"), message(data)).unwrap();
        std::fs::write(dir.path().join("sig.der"), raw_to_der(&signature)).unwrap();
        let args = [
            "dgst",
            "-sha384",
            "-verify",
            "public.pem",
            "-signature",
            "sig.der",
            "msg.bin",
        ];
        let (ok, output) = openssl(dir.path(), &args);
        assert!(ok && output.contains("Verified OK"), "{output}");
        // Without the prefix (or with other data) OpenSSL refuses it.
        std::fs::write(dir.path().join("msg.bin"), data).unwrap();
        let (ok, output) = openssl(dir.path(), &args);
        assert!(!ok, "verified without the prefix: {output}");
    }
}

#[test]
fn we_verify_openssl_signatures_and_read_its_keys() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let (ok, output) = openssl(dir.path(), args);
        assert!(ok, "openssl {args:?}: {output}");
        output
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        "key.pem",
    ]);
    run(&["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    run(&[
        "pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "pub.der",
    ]);
    run(&["ec", "-in", "key.pem", "-out", "sec1.pem"]);

    let public_pem = std::fs::read_to_string(dir.path().join("pub.pem")).unwrap();
    let public = PublicKey::from_spki_pem("pub.pem", &public_pem).unwrap();
    let der = std::fs::read(dir.path().join("pub.der")).unwrap();
    assert_eq!(public.spki_der(), der.as_slice());
    // The key id is the start of `openssl dgst -sha256` of the DER.
    let digest = run(&["dgst", "-sha256", "-r", "pub.der"]);
    assert_eq!(
        public.id(),
        &KeyId::parse(&digest[..16]).unwrap(),
        "openssl digest {digest}"
    );
    let trusted = TrustedKeys::read_pem_files(&[dir.path().join("pub.pem")]).unwrap();

    for data in DATA {
        std::fs::write(dir.path().join("msg.bin"), message(data)).unwrap();
        run(&[
            "dgst", "-sha384", "-sign", "key.pem", "-out", "sig.der", "msg.bin",
        ]);
        let signature = der_to_raw(&std::fs::read(dir.path().join("sig.der")).unwrap());
        assert_eq!(verify(data, &signature, &trusted), Ok(public.id().clone()));
        let mut other = data.to_vec();
        other.push(b'!');
        assert!(verify(&other, &signature, &trusted).is_err());
    }

    // OpenSSL's private keys, PKCS#8 and SEC1, sign for us as the same key.
    for file in ["key.pem", "sec1.pem"] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let key = SigningKey::from_pem(file, &text).unwrap();
        assert_eq!(key.key_id(), public.id(), "{file}");
        let signature = key.sign(b"from openssl's key").unwrap();
        assert!(verify(b"from openssl's key", &signature, &trusted).is_ok());
    }
    assert!(
        std::fs::read_to_string(dir.path().join("sec1.pem"))
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
}
