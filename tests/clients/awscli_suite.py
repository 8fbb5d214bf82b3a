"""aws-cli, unchanged, against the daemon's Route 53 API (`aws --endpoint-url`): the commands
an operator types, their JSON output, the waiter, and an error's exit status. Run by
tests/tests/route53_clients.rs, which then asks the daemon over DNS for what was created.

Environment: ENDPOINT, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS (the aws executable),
WORK (a directory for batch files).
"""

import json
import os
import subprocess

from suite import check, passed

ENDPOINT = os.environ["ENDPOINT"]
AWS = os.environ["AWS"]
WORK = os.environ["WORK"]


def aws(*args, ok=True):
    run = subprocess.run(
        [AWS, "--endpoint-url", ENDPOINT, "--region", "us-east-1", "--output", "json", "route53", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        check(run.returncode == 0, f"aws route53 {' '.join(args)}: {run.stderr}")
        return json.loads(run.stdout) if run.stdout.strip() else {}
    check(run.returncode != 0, f"aws route53 {' '.join(args)} should fail")
    return run.stderr


zone = aws("create-hosted-zone", "--name", "awscli.test", "--caller-reference", "awscli-zone",
           "--hosted-zone-config", "Comment=from aws-cli")
zid = zone["HostedZone"]["Id"]
check(zone["HostedZone"]["Config"]["Comment"] == "from aws-cli", f"{zone}")

batch = os.path.join(WORK, "awscli-batch.json")
with open(batch, "w") as f:
    json.dump({"Comment": "aws-cli batch", "Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.awscli.test", "Type": "A", "TTL": 60,
                                                   "ResourceRecords": [{"Value": "192.0.2.101"}]}},
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.awscli.test", "Type": "AAAA", "TTL": 60,
                                                   "ResourceRecords": [{"Value": "2001:db8::101"}]}},
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "txt.awscli.test", "Type": "TXT", "TTL": 60,
                                                   "ResourceRecords": [{"Value": "\"v=spf1 -all\""}]}},
    ]}, f)
change = aws("change-resource-record-sets", "--hosted-zone-id", zid, "--change-batch", f"file://{batch}")
aws("wait", "resource-record-sets-changed", "--id", change["ChangeInfo"]["Id"])
check(aws("get-change", "--id", change["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC", "INSYNC")

listed = aws("list-resource-record-sets", "--hosted-zone-id", zid)["ResourceRecordSets"]
check([(s["Name"], s["Type"]) for s in listed] == [
    ("awscli.test.", "NS"), ("awscli.test.", "SOA"), ("txt.awscli.test.", "TXT"),
    ("www.awscli.test.", "A"), ("www.awscli.test.", "AAAA")], f"{listed}")
# aws-cli's own paginator, one item per call, and --max-items.
one = aws("list-resource-record-sets", "--hosted-zone-id", zid, "--page-size", "1", "--max-items", "2")
check(len(one["ResourceRecordSets"]) == 2 and "NextToken" in one, f"{one}")
answer = aws("test-dns-answer", "--hosted-zone-id", zid, "--record-name", "www.awscli.test", "--record-type", "AAAA")
check(answer["RecordData"] == ["2001:db8::101"], f"{answer}")
zones = aws("list-hosted-zones-by-name", "--dns-name", "awscli.test")["HostedZones"]
check(zones[0]["Name"] == "awscli.test.", f"{zones}")

hc = aws("create-health-check", "--caller-reference", "awscli-hc", "--health-check-config",
         "Type=HTTP,IPAddress=192.0.2.9,Port=80,ResourcePath=/health,RequestInterval=30,FailureThreshold=3")
hid = hc["HealthCheck"]["Id"]
aws("change-tags-for-resource", "--resource-type", "healthcheck", "--resource-id", hid, "--add-tags", "Key=Name,Value=awscli")
tags = aws("list-tags-for-resource", "--resource-type", "healthcheck", "--resource-id", hid)
check(tags["ResourceTagSet"]["Tags"] == [{"Key": "Name", "Value": "awscli"}], f"{tags}")
aws("delete-health-check", "--health-check-id", hid)

# DNSSEC as an operator types it: a KSK, signing on, the DS to give the parent zone.
ksk = aws("create-key-signing-key", "--hosted-zone-id", zid, "--name", "awscli_ksk",
          "--key-management-service-arn", "arn:aws:kms:us-east-1:111122223333:key/awscli",
          "--status", "ACTIVE", "--caller-reference", "awscli-ksk")["KeySigningKey"]
enabled = aws("enable-hosted-zone-dnssec", "--hosted-zone-id", zid)
aws("wait", "resource-record-sets-changed", "--id", enabled["ChangeInfo"]["Id"])
shown = aws("get-dnssec", "--hosted-zone-id", zid)
check(shown["Status"]["ServeSignature"] == "SIGNING", f"{shown}")
check(shown["KeySigningKeys"][0]["DSRecord"] == ksk["DSRecord"], f"{shown}")
aws("disable-hosted-zone-dnssec", "--hosted-zone-id", zid)
aws("deactivate-key-signing-key", "--hosted-zone-id", zid, "--name", "awscli_ksk")
aws("delete-key-signing-key", "--hosted-zone-id", zid, "--name", "awscli_ksk")

# An error: a non-zero exit status and Route 53's code in the message.
err = aws("get-hosted-zone", "--id", "ZNOSUCHZONE", ok=False)
check("NoSuchHostedZone" in err, err)
passed("aws-cli")
