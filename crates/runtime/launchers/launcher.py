"""whisk-rs Python action launcher (embedded in and started by whisk-proxy).

Long-lived: started once per container before any /init, so the interpreter
and `json` are already warm. Protocol (ActionLoop style):

* at startup it writes `{"ok": true}` on fd 3 (ready acknowledgement);
* it reads one JSON request per line on stdin;
* `{"init": {"main", "binary", "dir", "env"}}` loads `<dir>/__main__.py`
  (the proxy has already written the source or unzipped the archive there),
  with a zip's `virtualenv/` site-packages on the path, and answers `{"ok": true}` or `{"error": "..."}`;
* `{"value": {...}, "env": {"__OW_...": "..."}}` calls the function and
  answers with its JSON result (whatever type it is; the proxy checks it is
  an object) or `{"error": "<exception message>"}`;
* every answer is one line on fd 3, written after stdout/stderr are flushed
  so that the function's logs precede the proxy's end-of-activation sentinel.
"""

import json
import os
import sys
import traceback
import types

ANSWER_FD = 3


def answer(payload):
    """Flush the user's output, then write one answer line on fd 3."""
    try:
        sys.stdout.flush()
    except Exception:
        pass
    try:
        sys.stderr.flush()
    except Exception:
        pass
    if not isinstance(payload, str):
        payload = json.dumps(payload)
    data = payload.encode("utf-8", "surrogateescape") + b"\n"
    view = memoryview(data)
    while view:
        written = os.write(ANSWER_FD, view)
        view = view[written:]


def describe(exc):
    """The message the invoker shows for an exception."""
    text = str(exc)
    return text if text else type(exc).__name__


def activate_virtualenv(directory):
    """A zip's `virtualenv/` folder, as OpenWhisk's Python runtime takes it: its
    `bin/activate_this.py` is run when present (virtualenv's own way, which puts its
    site-packages first on the path); a venv without that script gets each of its
    `lib/python*/site-packages` folders added to the path. Returns an error message or None."""
    venv = os.path.join(directory, "virtualenv")
    if not os.path.isdir(venv):
        return None
    for script in ("bin/activate_this.py", "Scripts/activate_this.py"):
        activate = os.path.join(venv, script)
        if os.path.isfile(activate):
            try:
                with open(activate) as source:
                    code = compile(source.read(), activate, "exec")
                exec(code, dict(__file__=activate))
            except Exception as exc:
                traceback.print_exc()
                return "Invalid virtualenv: %s: %s" % (type(exc).__name__, exc)
            return None
    import glob
    import site

    found = sorted(glob.glob(os.path.join(venv, "lib", "python*", "site-packages")))
    found += glob.glob(os.path.join(venv, "Lib", "site-packages"))
    if not found:
        return (
            "Invalid virtualenv. Zip file does not include 'activate_this.py'"
            " or a lib/python*/site-packages folder."
        )
    before = list(sys.path)
    for folder in found:
        site.addsitedir(folder)
    # site-packages of the action come before the interpreter's own, as activation does.
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before
    return None


def load(spec):
    """Handle the init message; return (function, error message)."""
    directory = spec["dir"]
    name = spec.get("main") or "main"
    for key, value in (spec.get("env") or {}).items():
        try:
            os.environ[key] = str(value)
        except (OSError, ValueError) as exc:  # a NUL, "=" or nothing as a name: no variable holds it
            return None, "Invalid environment variable %r: %s" % (key, exc)
    sys.path.insert(0, directory)
    os.chdir(directory)
    error = activate_virtualenv(directory)
    if error:
        return None, error
    path = os.path.join(directory, "__main__.py")
    if not os.path.isfile(path):
        if spec.get("binary"):
            return None, "Invalid action: the zip file does not include __main__.py"
        return None, "Invalid action: no code to execute"
    try:
        with open(path, "rb") as source:
            code = compile(source.read(), "__main__.py", "exec")
        module = types.ModuleType("main__")
        module.__file__ = path
        sys.modules["main__"] = module
        exec(code, module.__dict__)
    except Exception as exc:
        traceback.print_exc()
        return None, "%s: %s" % (type(exc).__name__, exc)
    function = module.__dict__.get(name)
    if function is None:
        return None, "Invalid function: %s not defined" % name
    if not callable(function):
        return None, "Invalid function: %s is not a function" % name
    return function, None


def call(function, message, previous_env):
    """Handle one run message; return the answer line (JSON text)."""
    env = message.get("env") or {}
    for key in previous_env - env.keys():
        os.environ.pop(key, None)
    for key, value in env.items():
        try:
            os.environ[key] = value
        except (OSError, TypeError, ValueError):
            pass  # a NUL, or "=" in the name: no variable can hold it; the function runs without
    try:
        result = function(message.get("value") or {})
        if type(result).__name__ == "coroutine":
            import asyncio

            result = asyncio.run(result)
    except Exception as exc:
        traceback.print_exc()
        return json.dumps({"error": describe(exc)}), env.keys()
    try:
        return json.dumps(result, allow_nan=False), env.keys()
    except (TypeError, ValueError) as exc:
        text = "The action did not return a JSON-serializable value: %s" % exc
        return json.dumps({"error": text}), env.keys()


def serve():
    lib = os.environ.get("WHISK_PROXY_LIB")
    if lib:
        sys.path.insert(0, lib)
    answer({"ok": True})
    function = None
    previous_env = set()
    stdin = sys.stdin.buffer
    # Each line reaches the invoker as it is printed (live logs), not when the buffer of a
    # pipe fills or the activation ends.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass
    while True:
        line = stdin.readline()
        if not line:
            return
        try:
            message = json.loads(line)
        except ValueError as exc:
            answer({"error": "launcher: malformed request: %s" % exc})
            continue
        if "init" in message:
            if function is not None:
                answer({"error": "Cannot initialize the action more than once."})
                continue
            function, error = load(message["init"])
            answer({"error": error} if error else {"ok": True})
        elif function is None:
            answer({"error": "The action has not been initialized."})
        else:
            line, previous_env = call(function, message, previous_env)
            answer(line)


if __name__ == "__main__":
    serve()
