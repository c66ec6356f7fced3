//! Zip actions as OpenWhisk's runtimes take them, through the real `whisk-proxy` binary:
//! Python zips with `__main__.py`, helper modules and a `virtualenv/` folder (its
//! site-packages on the path, through `bin/activate_this.py` or a plain venv layout), and
//! Node.js zips with `package.json` `main` or `index.js` and their `node_modules`.

mod support;

use serde_json::json;
use support::{zip_base64, Running};
use whisk_test_support::node::require_node;

/// `/init` with a zip (base64) and `binary: true`, as the invoker sends it.
async fn init_zip(proxy: &Running, files: &[(&str, &str)], main: &str) -> (u16, serde_json::Value) {
    let init =
        json!({"value": {"name": "z", "main": main, "code": zip_base64(files), "binary": true}});
    proxy.post("/init", init).await
}

#[tokio::test]
async fn python_zip_with_a_helper_module_and_another_main() {
    let proxy = Running::start("python").await;
    let files = [
        ("__main__.py", "import helper\ndef hello(args):\n    return {'greeting': helper.greet(args.get('name', 'stranger'))}\n"),
        ("helper.py", "def greet(name):\n    return 'Hello ' + name\n"),
    ];
    assert_eq!(
        init_zip(&proxy, &files, "hello").await,
        (200, json!({"ok": true}))
    );
    assert_eq!(
        proxy.run(json!({"name": "zip"})).await,
        (200, json!({"greeting": "Hello zip"}))
    );
}

#[tokio::test]
async fn python_zip_with_a_venv_site_packages() {
    let proxy = Running::start("python").await;
    let files = [
        ("__main__.py", "import cowsay_lite\nimport sys\ndef main(args):\n    return {'said': cowsay_lite.say('moo'), 'first': 'virtualenv' in sys.path[0]}\n"),
        ("virtualenv/bin/python", ""),
        ("virtualenv/pyvenv.cfg", "home = /usr/bin\n"),
        ("virtualenv/lib/python3.99/site-packages/cowsay_lite/__init__.py", "def say(what):\n    return '< ' + what + ' >'\n"),
    ];
    assert_eq!(
        init_zip(&proxy, &files, "main").await,
        (200, json!({"ok": true}))
    );
    assert_eq!(
        proxy.run(json!({})).await,
        (200, json!({"said": "< moo >", "first": true}))
    );
}

#[tokio::test]
async fn python_zip_with_virtualenvs_activate_this() {
    let proxy = Running::start("python").await;
    // What virtualenv's own activate_this.py does: the venv's site-packages go first.
    let activate = "import os, site, sys\n\
        base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n\
        before = list(sys.path)\n\
        site.addsitedir(os.path.join(base, 'packages'))\n\
        sys.path[:] = [p for p in sys.path if p not in before] + before\n\
        os.environ['VIRTUAL_ENV'] = base\n";
    let files = [
        ("__main__.py", "import os\nimport shout\ndef main(args):\n    return {'v': shout.it('hi'), 'env': os.environ['VIRTUAL_ENV'].endswith('virtualenv')}\n"),
        ("virtualenv/bin/activate_this.py", activate),
        ("virtualenv/packages/shout.py", "def it(s):\n    return s.upper()\n"),
    ];
    assert_eq!(
        init_zip(&proxy, &files, "main").await,
        (200, json!({"ok": true}))
    );
    assert_eq!(
        proxy.run(json!({})).await,
        (200, json!({"v": "HI", "env": true}))
    );
}

#[tokio::test]
async fn python_zip_with_a_broken_virtualenv_fails_init() {
    let (empty, failing) = tokio::join!(Running::start("python"), Running::start("python"));
    let files = [
        ("__main__.py", "def main(args):\n    return {}\n"),
        ("virtualenv/README", "not a venv"),
    ];
    let (status, body) = init_zip(&empty, &files, "main").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Invalid virtualenv"),
        "{body}"
    );
    // A run after the failed init says so, and the proxy still answers.
    assert_eq!(empty.run(json!({})).await.0, 502);

    let files = [
        ("__main__.py", "def main(args):\n    return {}\n"),
        (
            "virtualenv/bin/activate_this.py",
            "raise RuntimeError('broken venv')\n",
        ),
    ];
    let (status, body) = init_zip(&failing, &files, "main").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("broken venv"),
        "{body}"
    );
}

#[tokio::test]
async fn python_zip_without_main_py_fails_init() {
    let proxy = Running::start("python").await;
    let (status, body) = init_zip(
        &proxy,
        &[("main.py", "def main(a):\n    return a\n")],
        "main",
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("__main__.py"),
        "{body}"
    );
}

#[tokio::test]
async fn node_zip_with_package_main_and_node_modules() {
    require_node();
    let proxy = Running::start("nodejs").await;
    let files = [
        ("package.json", r#"{"name": "z", "version": "1.0.0", "main": "lib/entry.js"}"#),
        ("lib/entry.js", "const pad = require('left-pad-lite');\nexports.handler = (p) => ({padded: pad(String(p.n), 4)});\n"),
        ("node_modules/left-pad-lite/package.json", r#"{"name": "left-pad-lite", "main": "pad.js"}"#),
        ("node_modules/left-pad-lite/pad.js", "module.exports = (s, n) => s.padStart(n, '0');\n"),
    ];
    assert_eq!(
        init_zip(&proxy, &files, "handler").await,
        (200, json!({"ok": true}))
    );
    assert_eq!(
        proxy.run(json!({"n": 7})).await,
        (200, json!({"padded": "0007"}))
    );
}

#[tokio::test]
async fn node_zip_with_index_js_and_no_package_json() {
    require_node();
    let (index, missing) = tokio::join!(Running::start("nodejs"), Running::start("nodejs"));
    let files = [
        ("index.js", "const h = require('./helper');\nexports.main = async (p) => ({sum: h.add(p.a, p.b)});\n"),
        ("helper.js", "exports.add = (a, b) => a + b;\n"),
    ];
    assert_eq!(
        init_zip(&index, &files, "main").await,
        (200, json!({"ok": true}))
    );
    assert_eq!(
        index.run(json!({"a": 2, "b": 3})).await,
        (200, json!({"sum": 5}))
    );
    // Neither package.json main nor index.js: an init error, not a crash.
    let (status, body) = init_zip(
        &missing,
        &[("other.js", "exports.main = () => ({})")],
        "main",
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].is_string(), "{body}");
}
