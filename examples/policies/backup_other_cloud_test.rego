package main

import rego.v1

copies(sites) := {"posture": {"copies": [{"backup": "database", "destinations": count(sites), "sites": sites}]}}

test_two_clouds_pass if {
	count(deny) == 0 with input as copies(["aws", "gcp", "on-premises"])
}

test_one_cloud_and_a_nas_is_denied if {
	deny["backup database has no copy in a second cloud (sites: aws, on-premises)"] with input as copies(["aws", "on-premises"])
}
