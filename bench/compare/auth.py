#!/usr/bin/env python3
"""The broker side of a scenario for bench/compare.sh: access control (bench/COMPARE.md,
"Access control") and persistence ("Durable state").

A scenario may name what both brokers get in a "broker" block (bench/README.md):

    "broker": {"acl_file": "acl-50.acl",             relative to the scenario file
               "password_file": "users.passwd",       a ready-made file, or instead:
               "generate_password_file": true,        one entry per client of every role
                                                      with "username" and "password"
               "persistence": true,                   persistence true, a store per run
               "persistence_sync": "interval 100",    Tern only: batch | interval MS | never
               "brokers": ["tern"]}                   run on these brokers only

Subcommands:
  files FILE         what the scenario asks for, as shell-readable lines:
                         acl=<absolute path or empty>
                         password=<absolute path | generate | empty>
                         users=<entries a generated file has>
                         persistence=<0 | 1>
                         persistence_sync=<Tern's persistence_sync value, or empty>
                         brokers=<comma-separated names, empty: every broker>
  credentials FILE   the plain-text password file to generate: "user:password" per line, for
                     `mosquitto_passwd -U` to hash in place ($7$, PBKDF2-SHA512)

Templates are rendered as tern-bench does (%i the client's index within its role, %% a percent
sign). %c cannot be: a client id carries tern-bench's random run tag, unknown before the run.
Errors (exit 2) name the scenario and the field.
"""

import json
import os
import sys


class ScenarioError(Exception):
    pass


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ScenarioError(f"cannot read: {e}")
    if not isinstance(doc, dict):
        raise ScenarioError("not a JSON object")
    return doc


def broker_block(doc):
    b = doc.get("broker", {})
    if not isinstance(b, dict):
        raise ScenarioError("broker: must be an object")
    for k in b:
        if k not in ("acl_file", "password_file", "generate_password_file", "persistence",
                     "persistence_sync", "brokers"):
            raise ScenarioError(f"broker.{k}: unknown field")
    if b.get("password_file") and b.get("generate_password_file"):
        raise ScenarioError("broker.generate_password_file and broker.password_file exclude each other")
    if not isinstance(b.get("persistence", False), bool):
        raise ScenarioError("broker.persistence: must be true or false")
    sync = b.get("persistence_sync")
    if sync is not None:
        words = sync.split(" ") if isinstance(sync, str) else []
        good = words in (["batch"], ["never"]) or (
            len(words) == 2 and words[0] == "interval" and words[1].isdigit()
            and 1 <= int(words[1]) <= 60000)
        if not good:
            raise ScenarioError("broker.persistence_sync: must be \"batch\", \"interval MS\" "
                                f"(1 to 60000) or \"never\" (got {json.dumps(sync)})")
        if not b.get("persistence"):
            raise ScenarioError("broker.persistence_sync: needs \"persistence\": true")
    brokers = b.get("brokers")
    if brokers is not None:
        if (not isinstance(brokers, list) or not brokers
                or any(x not in ("tern", "mosquitto") for x in brokers)):
            raise ScenarioError("broker.brokers: must be a non-empty list of \"tern\" and "
                                "\"mosquitto\"")
    return b


def render(template, index, where):
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        n = template[i + 1] if i + 1 < len(template) else ""
        if n == "%":
            out.append("%")
        elif n == "i":
            out.append(str(index))
        elif n == "c":
            raise ScenarioError(f"{where}: %c cannot go into a generated password file "
                                "(client ids carry tern-bench's run tag); use %i")
        else:
            raise ScenarioError(f"{where}: '%{n}' is not a template sequence (%i, %%)")
        i += 2
    return "".join(out)


def credentials(doc):
    """[(user, password)] in role order, each user once."""
    seen = {}
    out = []
    for ri, role in enumerate(doc.get("roles", [])):
        if not isinstance(role, dict) or "username" not in role or "password" not in role:
            continue
        clients = role.get("clients", 1)
        for i in range(int(clients)):
            user = render(str(role["username"]), i, f"roles[{ri}].username")
            pw = render(str(role["password"]), i, f"roles[{ri}].password")
            if ":" in user or "\n" in user or "\n" in pw or user == "":
                raise ScenarioError(f"roles[{ri}].username: '{user}' cannot be written to a "
                                    "password file (empty, ':' or a line break)")
            if user in seen:
                if seen[user] != pw:
                    raise ScenarioError(f"roles[{ri}]: user '{user}' has two passwords")
                continue
            seen[user] = pw
            out.append((user, pw))
    return out


def main(argv):
    if len(argv) != 3 or argv[1] not in ("files", "credentials"):
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[2]
    try:
        doc = load(path)
        b = broker_block(doc)
        base = os.path.dirname(os.path.abspath(path))
        if argv[1] == "files":
            acl = os.path.join(base, b["acl_file"]) if b.get("acl_file") else ""
            if b.get("generate_password_file"):
                pw = "generate"
                users = len(credentials(doc))
                if users == 0:
                    raise ScenarioError("broker.generate_password_file: no role has both "
                                        "\"username\" and \"password\"")
            else:
                pw = os.path.join(base, b["password_file"]) if b.get("password_file") else ""
                users = 0
            for name, f in (("acl_file", acl), ("password_file", pw)):
                if f and f != "generate" and not os.access(f, os.R_OK):
                    raise ScenarioError(f"broker.{name}: cannot read {f}")
            print(f"acl={acl}")
            print(f"password={pw}")
            print(f"users={users}")
            print(f"persistence={1 if b.get('persistence') else 0}")
            print(f"persistence_sync={b.get('persistence_sync', '')}")
            print(f"brokers={','.join(b.get('brokers', []))}")
        else:
            for user, pw in credentials(doc):
                print(f"{user}:{pw}")
    except ScenarioError as e:
        print(f"scenario {path}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
