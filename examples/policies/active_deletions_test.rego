package main

import rego.v1

deleting(n, region) := [{"address": sprintf("region.%s.compute.nodes[%d]", [region, i]), "type": "instance", "region": region, "change": {"actions": ["delete"]}} | some i in numbers.range(1, n)]

test_ten_deletions_pass if {
	count(deny) == 0 with input as {"roles": {"us-east-1": "active"}, "resource_changes": deleting(10, "us-east-1")}
}

test_eleven_deletions_are_denied if {
	deny["the plan deletes 11 instances in the active region us-east-1 (at most 10 at once)"] with input as {"roles": {"us-east-1": "active"}, "resource_changes": deleting(11, "us-east-1")}
}

test_deletions_in_the_region_demoted_count if {
	deny["the plan deletes 12 instances in the active region us-east-1 (at most 10 at once)"] with input as {
		"roles": {"us-east-1": "standby", "eu-west-1": "active"},
		"role_transitions": [{"region": "us-east-1", "from": "active", "to": "standby"}],
		"resource_changes": deleting(12, "us-east-1"),
	}
}

test_deletions_elsewhere_pass if {
	count(deny) == 0 with input as {"roles": {"us-east-1": "active"}, "resource_changes": deleting(20, "eu-west-1")}
}
