package main

import rego.v1

promotion := [{"region": "asia-pacific-1", "from": "cold", "to": "active", "action": "promote"}]

test_cold_promotion_without_restore_is_denied if {
	deny["failover to the cold site asia-pacific-1 restores no backup: add a `restore` block to the backup"] with input as {"role_transitions": promotion}
}

test_cold_promotion_with_restore_passes if {
	count(deny) == 0 with input as {"role_transitions": promotion, "restores": [{"region": "asia-pacific-1"}]}
}

test_standby_promotion_needs_no_restore if {
	count(deny) == 0 with input as {"role_transitions": [{"region": "eu-west-1", "from": "standby", "to": "active"}]}
}
