"""Starts a peer-group job for every Kafka message that asks for one: the seed's workflow
(N instances of a function that find each other) driven by a topic instead of a shell loop.

A message's value is JSON, e.g. {"action": "ring", "instances": 8}; each one starts that
action's N instances in a new peer group (the gang invoke, `?instances=N`) and the result lists
the groups started. Messages without "instances" are skipped.

    whisk action create ring functions/ring.py
    whisk action create kafka_job functions/kafka_job.py -a provide-api-key true
    whisk trigger create jobs --feed /whisk.system/messaging/kafkaFeed \\
        -p brokers 127.0.0.1:9092 -p topic jobs -p isJSONData true
    whisk rule create run-jobs jobs kafka_job
    # then produce {"action": "ring", "instances": 8} to topic "jobs", e.g. with tansu:
    echo '{"value": {"action": "ring", "instances": 8}}' | tansu cat produce jobs
"""
import base64
import json
import os
import urllib.parse
import urllib.request


def start(action, instances):
    host = os.environ["__OW_API_HOST"].rstrip("/")
    key = os.environ["__OW_API_KEY"]
    name = urllib.parse.quote(action, safe="/")
    url = f"{host}/api/v1/namespaces/_/actions/{name}?instances={int(instances)}"
    req = urllib.request.Request(url, data=b"{}", method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Basic " + base64.b64encode(key.encode()).decode())
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def main(args):
    started = []
    for message in args.get("messages", []):
        job = message.get("value")
        if isinstance(job, str):
            try:
                job = json.loads(job)
            except ValueError:
                continue
        if not isinstance(job, dict) or "instances" not in job:
            continue
        answer = start(job.get("action", "ring"), job["instances"])
        started.append({"offset": message.get("offset"), "group": answer.get("group"),
                        "activationIds": answer.get("activationIds", [])})
    return {"started": started}
