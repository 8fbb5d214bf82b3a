"""boto3, unchanged, against the daemon's Route 53 API: every operation the daemon serves,
paginators and the resource_record_sets_changed waiter, Route 53's errors, and SigV4 with the
server's access keys. Run by tests/tests/route53_clients.rs, which then asks the daemon over
DNS for what this script created.

Environment: ENDPOINT (http://127.0.0.1:PORT), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (a
key the daemon has).
"""

import os
import time

import boto3
import botocore.exceptions

from suite import check, passed

ENDPOINT = os.environ["ENDPOINT"]


def client(**kwargs):
    return boto3.client(
        "route53", endpoint_url=ENDPOINT, region_name="eu-west-1", **kwargs
    )


def refused(code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        check(got == code, f"{call.__name__}: expected {code}, got {got}: {e}")
        return e.response
    check(False, f"{call.__name__}: expected {code}, it succeeded")


c = client()

# ---- SigV4: a wrong secret is refused, with AWS's code ----
bad = client(
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong"
)
refused("SignatureDoesNotMatch", bad.list_hosted_zones)
unknown = client(aws_access_key_id="AKIDNOBODY", aws_secret_access_key="x")
refused("InvalidClientTokenId", unknown.get_hosted_zone_count)

# ---- hosted zones ----
before = c.get_hosted_zone_count()["HostedZoneCount"]
z = c.create_hosted_zone(
    Name="boto3.test",
    CallerReference="boto3-zone",
    HostedZoneConfig={"Comment": "made by boto3", "PrivateZone": False},
)
check(z["ResponseMetadata"]["HTTPStatusCode"] == 201, "CreateHostedZone is 201")
check(z["ResponseMetadata"]["HTTPHeaders"]["location"].endswith(z["HostedZone"]["Id"].split("/")[-1]), "Location")
zid = z["HostedZone"]["Id"]
check(zid.startswith("/hostedzone/"), f"zone id {zid}")
check(z["HostedZone"]["Name"] == "boto3.test.", "the name is absolute")
check(z["HostedZone"]["ResourceRecordSetCount"] == 2, "SOA and NS")
check(z["DelegationSet"]["NameServers"] == ["ns1.boto3.test"], f"{z['DelegationSet']}")
check(z["ChangeInfo"]["Id"].startswith("/change/"), "change id")
c.get_waiter("resource_record_sets_changed").wait(
    Id=z["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
)
refused(
    "HostedZoneAlreadyExists",
    c.create_hosted_zone,
    Name="other.boto3.test",
    CallerReference="boto3-zone",
)
check(c.get_hosted_zone_count()["HostedZoneCount"] == before + 1, "count")
got = c.get_hosted_zone(Id=zid)
check(got["HostedZone"]["Config"]["Comment"] == "made by boto3", "comment")
check(got["DelegationSet"]["NameServers"], "name servers")
c.update_hosted_zone_comment(Id=zid, Comment="changed")
check(c.get_hosted_zone(Id=zid)["HostedZone"]["Config"]["Comment"] == "changed", "UpdateHostedZoneComment")
extra = [
    c.create_hosted_zone(Name=f"z{i}.boto3.test", CallerReference=f"boto3-z{i}")["HostedZone"]["Id"]
    for i in range(3)
]
names = [
    zone["Name"]
    for page in c.get_paginator("list_hosted_zones").paginate(PaginationConfig={"PageSize": 2})
    for zone in page["HostedZones"]
]
check(len(names) == len(set(names)) == before + 4, f"paginated zones {names}")
by_name = c.list_hosted_zones_by_name(DNSName="z1.boto3.test", MaxItems="2")
check([h["Name"] for h in by_name["HostedZones"]] == ["z1.boto3.test.", "z2.boto3.test."], f"by name {by_name['HostedZones']}")
check(by_name["IsTruncated"] is False or "NextDNSName" in by_name, "by name paging")
refused("NoSuchHostedZone", c.get_hosted_zone, Id="ZNOSUCHZONE")
check(c.get_dnssec(HostedZoneId=zid)["Status"]["ServeSignature"] == "NOT_SIGNING", "GetDNSSEC")

# ---- DNSSEC: a KSK, signing on and off, the KSK retired (on an extra zone) ----
sid = extra[2]
refused("KeySigningKeyWithActiveStatusNotFound", c.enable_hosted_zone_dnssec, HostedZoneId=sid)
k = c.create_key_signing_key(
    CallerReference="boto3-ksk",
    HostedZoneId=sid,
    KeyManagementServiceArn="arn:aws:kms:us-east-1:111122223333:key/boto3",
    Name="boto3_ksk",
    Status="ACTIVE",
)
check(k["ResponseMetadata"]["HTTPStatusCode"] == 201, "CreateKeySigningKey is 201")
check(k["Location"].endswith("/boto3_ksk"), f"Location {k['Location']}")
ksk = k["KeySigningKey"]
check(ksk["Flag"] == 257 and ksk["SigningAlgorithmType"] == 13 and ksk["DigestAlgorithmType"] == 2, f"{ksk}")
check(ksk["DSRecord"] == f"{ksk['KeyTag']} 13 2 {ksk['DigestValue']}", f"{ksk}")
check(ksk["DNSKEYRecord"] == f"257 3 13 {ksk['PublicKey']}", f"{ksk}")
check(hasattr(ksk["CreatedDate"], "year"), "CreatedDate is a timestamp")
refused("KeySigningKeyAlreadyExists", c.create_key_signing_key, CallerReference="again",
        HostedZoneId=sid, KeyManagementServiceArn="arn:other", Name="boto3_ksk", Status="ACTIVE")
e = c.enable_hosted_zone_dnssec(HostedZoneId=sid)
c.get_waiter("resource_record_sets_changed").wait(Id=e["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
got = c.get_dnssec(HostedZoneId=sid)
check(got["Status"]["ServeSignature"] == "SIGNING", f"{got['Status']}")
check([x["Name"] for x in got["KeySigningKeys"]] == ["boto3_ksk"], f"{got['KeySigningKeys']}")
check(got["KeySigningKeys"][0]["DigestValue"] == ksk["DigestValue"], "the same key")
refused("KeySigningKeyInUse", c.deactivate_key_signing_key, HostedZoneId=sid, Name="boto3_ksk")
refused("NoSuchKeySigningKey", c.activate_key_signing_key, HostedZoneId=sid, Name="nobody")
c.disable_hosted_zone_dnssec(HostedZoneId=sid)
c.deactivate_key_signing_key(HostedZoneId=sid, Name="boto3_ksk")
check(c.get_dnssec(HostedZoneId=sid)["KeySigningKeys"][0]["Status"] == "INACTIVE", "deactivated")
c.delete_key_signing_key(HostedZoneId=sid, Name="boto3_ksk")
got = c.get_dnssec(HostedZoneId=sid)
check(got["Status"]["ServeSignature"] == "NOT_SIGNING" and got["KeySigningKeys"] == [], f"{got}")

# ---- health checks ----
hc_config = {
    "Type": "TCP",
    "IPAddress": "127.0.0.1",
    "Port": 9,
    "RequestInterval": 10,
    "FailureThreshold": 1,
}
hc = c.create_health_check(CallerReference="boto3-hc", HealthCheckConfig=hc_config)
check(hc["ResponseMetadata"]["HTTPStatusCode"] == 201, "CreateHealthCheck is 201")
hid = hc["HealthCheck"]["Id"]
again = c.create_health_check(CallerReference="boto3-hc", HealthCheckConfig=hc_config)
check(again["HealthCheck"]["Id"] == hid, "the same request again is the same check")
refused(
    "HealthCheckAlreadyExists",
    c.create_health_check,
    CallerReference="boto3-hc",
    HealthCheckConfig=dict(hc_config, Port=10),
)
config = c.get_health_check(HealthCheckId=hid)["HealthCheck"]["HealthCheckConfig"]
for member in ("Port", "Type", "MeasureLatency", "RequestInterval", "FailureThreshold", "Disabled", "Inverted", "IPAddress"):
    check(member in config, f"HealthCheckConfig has {member} (octoDNS reads it)")
up = c.update_health_check(HealthCheckId=hid, HealthCheckVersion=1, Port=10, Inverted=True)
check(up["HealthCheck"]["HealthCheckVersion"] == 2, "version bumped")
check(up["HealthCheck"]["HealthCheckConfig"]["Port"] == 10, "port updated")
refused("HealthCheckVersionMismatch", c.update_health_check, HealthCheckId=hid, HealthCheckVersion=1, Port=11)
check(c.get_health_check_count()["HealthCheckCount"] >= 1, "GetHealthCheckCount")
listed = [
    h["Id"]
    for page in c.get_paginator("list_health_checks").paginate(PaginationConfig={"PageSize": 1})
    for h in page["HealthChecks"]
]
check(hid in listed, "ListHealthChecks paginates")
refused("NoSuchHealthCheck", c.get_health_check, HealthCheckId="00000000-0000-4000-8000-000000000000")
spare = c.create_health_check(CallerReference="boto3-spare", HealthCheckConfig=dict(hc_config, Disabled=True))["HealthCheck"]["Id"]
c.delete_health_check(HealthCheckId=spare)
refused("NoSuchHealthCheck", c.delete_health_check, HealthCheckId=spare)

# ---- tags ----
c.change_tags_for_resource(
    ResourceType="hostedzone", ResourceId=zid.split("/")[-1], AddTags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "dns"}]
)
c.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zid.split("/")[-1], RemoveTagKeys=["team"])
tags = c.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zid.split("/")[-1])["ResourceTagSet"]
check(tags["Tags"] == [{"Key": "env", "Value": "test"}], f"zone tags {tags}")
c.change_tags_for_resource(ResourceType="healthcheck", ResourceId=hid, AddTags=[{"Key": "Name", "Value": "www"}])
many = c.list_tags_for_resources(ResourceType="healthcheck", ResourceIds=[hid])["ResourceTagSets"]
check(many[0]["Tags"] == [{"Key": "Name", "Value": "www"}], f"check tags {many}")
refused("NoSuchHostedZone", c.list_tags_for_resource, ResourceType="hostedzone", ResourceId="ZNOSUCHZONE")

# ---- record sets ----
def rr(*values):
    return [{"Value": v} for v in values]


changes = [
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.boto3.test", "Type": "A", "TTL": 60, "ResourceRecords": rr("192.0.2.1")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "*.wild.boto3.test", "Type": "TXT", "TTL": 60, "ResourceRecords": rr('"hello"')}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "w.boto3.test", "Type": "A", "SetIdentifier": "zero", "Weight": 0, "TTL": 60, "ResourceRecords": rr("192.0.2.10")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "w.boto3.test", "Type": "A", "SetIdentifier": "one", "Weight": 1, "TTL": 60, "ResourceRecords": rr("192.0.2.11")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "f.boto3.test", "Type": "A", "SetIdentifier": "p", "Failover": "PRIMARY", "HealthCheckId": hid, "TTL": 60, "ResourceRecords": rr("192.0.2.20")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "f.boto3.test", "Type": "A", "SetIdentifier": "s", "Failover": "SECONDARY", "TTL": 60, "ResourceRecords": rr("192.0.2.21")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "geo.boto3.test", "Type": "A", "SetIdentifier": "default", "GeoLocation": {"CountryCode": "*"}, "TTL": 60, "ResourceRecords": rr("192.0.2.30")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "geo.boto3.test", "Type": "A", "SetIdentifier": "eu", "GeoLocation": {"ContinentCode": "EU"}, "TTL": 60, "ResourceRecords": rr("192.0.2.31")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "mv.boto3.test", "Type": "A", "SetIdentifier": "a", "MultiValueAnswer": True, "TTL": 60, "ResourceRecords": rr("192.0.2.40")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "boto3.test", "Type": "A", "AliasTarget": {"HostedZoneId": zid, "DNSName": "www.boto3.test", "EvaluateTargetHealth": False}}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "boto3.test", "Type": "MX", "TTL": 300, "ResourceRecords": rr("10 mail.boto3.test.")}},
]
r = c.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Comment": "boto3 batch", "Changes": changes})
check(r["ChangeInfo"]["Status"] in ("PENDING", "INSYNC"), "ChangeInfo status")
c.get_waiter("resource_record_sets_changed").wait(Id=r["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
check(c.get_change(Id=r["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC", "GetChange INSYNC")

sets = c.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
by_key = {(s["Name"], s["Type"], s.get("SetIdentifier")): s for s in sets}
check(("\\052.wild.boto3.test.", "TXT", None) in by_key, f"the wildcard comes back as \\052: {list(by_key)}")
check(by_key[("w.boto3.test.", "A", "zero")]["Weight"] == 0, "Weight 0 is echoed")
alias = by_key[("boto3.test.", "A", None)]
check("TTL" not in alias and alias["AliasTarget"]["DNSName"] == "www.boto3.test.", f"alias {alias}")
check(by_key[("boto3.test.", "MX", None)]["ResourceRecords"] == rr("10 mail.boto3.test."), "values byte for byte")
check(sets[0]["Name"] == "boto3.test.", "the apex first")

# Lookups as Terraform does them: raw wildcard name, type, one item.
one = c.list_resource_record_sets(HostedZoneId=zid, StartRecordName="*.wild.boto3.test", StartRecordType="TXT", MaxItems="1")
check(one["ResourceRecordSets"][0]["Type"] == "TXT" and one["MaxItems"] == "1", f"lookup {one}")
refused("InvalidInput", c.list_resource_record_sets, HostedZoneId=zid, StartRecordType="A")

# 250 more sets, listed through the paginator 100 at a time: nothing lost or repeated.
bulk = [
    {"Action": "CREATE", "ResourceRecordSet": {"Name": f"h{i:03}.boto3.test", "Type": "A", "TTL": 60, "ResourceRecords": rr("192.0.2.50")}}
    for i in range(250)
]
c.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": bulk})
pages = list(c.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zid, PaginationConfig={"PageSize": 100}))
listed = [(s["Name"], s["Type"], s.get("SetIdentifier")) for p in pages for s in p["ResourceRecordSets"]]
check(len(pages) == 3, f"{len(pages)} pages")
check(len(listed) == len(set(listed)) == len(sets) + 250, f"{len(listed)} sets listed")

# Route 53's batch errors: duplicate CREATE, inexact DELETE, out of zone; each changes nothing.
count = lambda: c.get_hosted_zone(Id=zid)["HostedZone"]["ResourceRecordSetCount"]
n = count()
err = refused("InvalidChangeBatch", c.change_resource_record_sets, HostedZoneId=zid, ChangeBatch={"Changes": [
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "ok.boto3.test", "Type": "A", "TTL": 60, "ResourceRecords": rr("192.0.2.60")}},
    changes[0],
]})
check("already exists" in err["Error"]["Message"], err["Error"]["Message"])
refused("InvalidChangeBatch", c.change_resource_record_sets, HostedZoneId=zid, ChangeBatch={"Changes": [
    {"Action": "DELETE", "ResourceRecordSet": {"Name": "www.boto3.test", "Type": "A", "TTL": 61, "ResourceRecords": rr("192.0.2.1")}}]})
refused("InvalidChangeBatch", c.change_resource_record_sets, HostedZoneId=zid, ChangeBatch={"Changes": [
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.elsewhere.test", "Type": "A", "TTL": 60, "ResourceRecords": rr("192.0.2.1")}}]})
refused("InvalidChangeBatch", c.change_resource_record_sets, HostedZoneId=zid, ChangeBatch={"Changes": [
    {"Action": "DELETE", "ResourceRecordSet": {"Name": "nope.boto3.test", "Type": "A", "TTL": 60, "ResourceRecords": rr("192.0.2.1")}}]})
check(count() == n, "refused batches changed nothing")
refused("HealthCheckInUse", c.delete_health_check, HealthCheckId=hid)

# UPSERT, and DELETE by echoing the listed set (with its \052 name), as octoDNS does.
wild = by_key[("\\052.wild.boto3.test.", "TXT", None)]
r = c.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [
    {"Action": "UPSERT", "ResourceRecordSet": {"Name": "www.boto3.test", "Type": "A", "TTL": 60, "ResourceRecords": rr("192.0.2.2")}},
    {"Action": "DELETE", "ResourceRecordSet": wild},
]})
c.get_waiter("resource_record_sets_changed").wait(Id=r["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})

# TestDNSAnswer through the engine that serves DNS, ECS included.
t = c.test_dns_answer(HostedZoneId=zid, RecordName="www.boto3.test", RecordType="A")
check(t["RecordData"] == ["192.0.2.2"] and t["ResponseCode"] == "NOERROR", f"TestDNSAnswer {t}")
t = c.test_dns_answer(HostedZoneId=zid, RecordName="geo.boto3.test", RecordType="A", EDNS0ClientSubnetIP="192.0.2.0", EDNS0ClientSubnetMask="24")
check(t["RecordData"] in (["192.0.2.30"], ["192.0.2.31"]), f"geo {t}")
t = c.test_dns_answer(HostedZoneId=zid, RecordName="nope.boto3.test", RecordType="A")
check(t["ResponseCode"] == "NXDOMAIN", f"NXDOMAIN {t}")

# Health status: the check probes a closed port, so it fails with a reason.
deadline = time.time() + 30
while True:
    status = c.get_health_check_status(HealthCheckId=hid)["HealthCheckObservations"]
    if status and status[0]["StatusReport"]["Status"].startswith("Failure"):
        break
    check(time.time() < deadline, f"no failure observed: {status}")
    time.sleep(0.5)
reason = c.get_health_check_last_failure_reason(HealthCheckId=hid)["HealthCheckObservations"]
check(reason and reason[0]["StatusReport"]["Status"].startswith("Failure"), f"last failure {reason}")

# ---- CIDR collections: IP-based routing tables ----
col = c.create_cidr_collection(Name="boto3-offices", CallerReference="boto3-col")
check(col["ResponseMetadata"]["HTTPStatusCode"] == 201, "CreateCidrCollection is 201")
cid = col["Collection"]["Id"]
check(col["Collection"]["Version"] == 1, f"{col['Collection']}")
again = c.create_cidr_collection(Name="boto3-offices", CallerReference="boto3-col")
check(again["Collection"]["Id"] == cid, "the same request again is the same collection")
refused("CidrCollectionAlreadyExistsException", c.create_cidr_collection, Name="boto3-offices", CallerReference="other")
ch = c.change_cidr_collection(Id=cid, CollectionVersion=1, Changes=[
    {"LocationName": "office", "Action": "PUT", "CidrList": ["10.0.0.0/8", "2001:db8:1::/48"]},
    {"LocationName": "lab", "Action": "PUT", "CidrList": ["172.16.0.0/12"]},
])
c.get_waiter("resource_record_sets_changed").wait(Id=ch["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
refused("CidrCollectionVersionMismatchException", c.change_cidr_collection, Id=cid, CollectionVersion=1,
        Changes=[{"LocationName": "lab", "Action": "DELETE_IF_EXISTS", "CidrList": ["172.16.0.0/12"]}])
refused("InvalidInput", c.change_cidr_collection, Id=cid, Changes=[{"LocationName": "x", "Action": "PUT", "CidrList": ["10.0.0.1/8"]}])
check([x["Name"] for x in c.list_cidr_collections()["CidrCollections"]] == ["boto3-offices"], "ListCidrCollections")
check(sorted(l["LocationName"] for l in c.list_cidr_locations(CollectionId=cid)["CidrLocations"]) == ["lab", "office"], "ListCidrLocations")
blocks = c.list_cidr_blocks(CollectionId=cid, LocationName="office")["CidrBlocks"]
check(sorted(b["CidrBlock"] for b in blocks) == ["10.0.0.0/8", "2001:db8:1::/48"], f"ListCidrBlocks {blocks}")
refused("NoSuchCidrLocationException", c.list_cidr_blocks, CollectionId=cid, LocationName="nowhere")
r = c.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "ip.boto3.test", "Type": "A", "SetIdentifier": "office", "TTL": 60,
     "CidrRoutingConfig": {"CollectionId": cid, "LocationName": "office"}, "ResourceRecords": rr("192.0.2.70")}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "ip.boto3.test", "Type": "A", "SetIdentifier": "default", "TTL": 60,
     "CidrRoutingConfig": {"CollectionId": cid, "LocationName": "*"}, "ResourceRecords": rr("192.0.2.71")}},
]})
c.get_waiter("resource_record_sets_changed").wait(Id=r["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
t = c.test_dns_answer(HostedZoneId=zid, RecordName="ip.boto3.test", RecordType="A", EDNS0ClientSubnetIP="10.9.0.0", EDNS0ClientSubnetMask="16")
check(t["RecordData"] == ["192.0.2.70"], f"the office block routes to its record {t}")
t = c.test_dns_answer(HostedZoneId=zid, RecordName="ip.boto3.test", RecordType="A", EDNS0ClientSubnetIP="198.51.100.0", EDNS0ClientSubnetMask="24")
check(t["RecordData"] == ["192.0.2.71"], f"others get the default {t}")
refused("CidrBlockInUseException", c.change_cidr_collection, Id=cid, Changes=[
    {"LocationName": "office", "Action": "DELETE_IF_EXISTS", "CidrList": ["10.0.0.0/8", "2001:db8:1::/48"]}])
refused("CidrCollectionInUseException", c.delete_cidr_collection, Id=cid)
spare = c.create_cidr_collection(Name="boto3-spare", CallerReference="boto3-spare")["Collection"]["Id"]
c.delete_cidr_collection(Id=spare)
refused("NoSuchCidrCollectionException", c.list_cidr_locations, CollectionId=spare)

# Zone deletion: refused while not empty; the extra zones go, and their changes stay known.
refused("HostedZoneNotEmpty", c.delete_hosted_zone, Id=zid)
for extra_id in extra:
    d = c.delete_hosted_zone(Id=extra_id)
    c.get_waiter("resource_record_sets_changed").wait(Id=d["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 30})

passed("boto3")
