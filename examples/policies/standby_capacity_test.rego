package main

import rego.v1

plan(standby_instances, standby_replicas) := {"capacity": {
	"us-east-1": {"role": "active", "instances": 4, "replicas": 8},
	"eu-west-1": {"role": "standby", "instances": standby_instances, "replicas": standby_replicas},
	"asia-pacific-1": {"role": "cold", "instances": 0, "replicas": 0},
}}

test_half_the_capacity_passes if {
	count(deny) == 0 with input as plan(2, 4)
}

test_too_few_instances_is_denied if {
	deny["standby eu-west-1 keeps 1 instance(s), less than half of the 4 of active us-east-1"] with input as plan(1, 4)
}

test_too_few_replicas_is_denied if {
	deny["standby eu-west-1 keeps 3 replica(s), less than half of the 8 of active us-east-1"] with input as plan(2, 3)
}

test_a_cold_site_may_be_empty if {
	count(deny) == 0 with input as plan(4, 8)
}
