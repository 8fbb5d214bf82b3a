"""Record sets made by boto3 and aws-cli, unchanged, for the XDP test in
tests/tests/route53_clients.rs: zone fast.test with a simple A and AAAA (boto3), a weighted
pair and a failover pair (boto3), and a simple A made by aws-cli; then signs the zone (a KSK,
DNSSEC on) and writes its DS as a delv trust anchor. Waits until INSYNC.

Environment: ENDPOINT, AWS (the aws executable), WORK.
"""

import json
import os
import subprocess

import boto3

ENDPOINT = os.environ["ENDPOINT"]
c = boto3.client("route53", endpoint_url=ENDPOINT, region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test")
zid = c.create_hosted_zone(Name="fast.test", CallerReference="fast")["HostedZone"]["Id"]


def rr(*values):
    return [{"Value": v} for v in values]


def create(name, rtype, values, **policy):
    return {"Action": "CREATE", "ResourceRecordSet": dict(Name=name, Type=rtype, TTL=60, ResourceRecords=rr(*values), **policy)}


r = c.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [
    create("boto3.fast.test", "A", ["192.0.2.201"]),
    create("boto3.fast.test", "AAAA", ["2001:db8::201"]),
    create("w.fast.test", "A", ["192.0.2.202"], SetIdentifier="a", Weight=1),
    create("w.fast.test", "A", ["192.0.2.203"], SetIdentifier="b", Weight=0),
    create("f.fast.test", "A", ["192.0.2.204"], SetIdentifier="p", Failover="PRIMARY"),
    create("f.fast.test", "A", ["192.0.2.205"], SetIdentifier="s", Failover="SECONDARY"),
]})
c.get_waiter("resource_record_sets_changed").wait(Id=r["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})

batch = os.path.join(os.environ["WORK"], "xdp-batch.json")
with open(batch, "w") as f:
    json.dump({"Changes": [create("cli.fast.test", "A", ["192.0.2.206"])]}, f)
aws = [os.environ["AWS"], "--endpoint-url", ENDPOINT, "--region", "us-east-1", "--output", "json", "route53"]
out = subprocess.run(aws + ["change-resource-record-sets", "--hosted-zone-id", zid, "--change-batch", f"file://{batch}"],
                     capture_output=True, text=True, check=True, timeout=120)
change = json.loads(out.stdout)["ChangeInfo"]["Id"]
subprocess.run(aws + ["wait", "resource-record-sets-changed", "--id", change], check=True, timeout=120)
# Signed here: a KSK and DNSSEC on; the DS (what the parent would publish) for the test's
# validator.
ksk = c.create_key_signing_key(CallerReference="fast-ksk", HostedZoneId=zid, Name="fast_ksk",
                               KeyManagementServiceArn="arn:aws:kms:us-east-1:1:key/fast",
                               Status="ACTIVE")["KeySigningKey"]
e = c.enable_hosted_zone_dnssec(HostedZoneId=zid)
c.get_waiter("resource_record_sets_changed").wait(Id=e["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
with open(os.path.join(os.environ["WORK"], "fast.test.anchor"), "w") as f:
    f.write(f'trust-anchors {{ fast.test. static-ds {ksk["KeyTag"]} 13 2 "{ksk["DigestValue"]}"; }};\n')
print("fast.test made and signed")
