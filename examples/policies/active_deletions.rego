# No plan deletes more than 10 instances in the active region at once: that is an outage,
# not a change; split it or make it deliberately (the rule is reviewed like code).
package main

import rego.v1

max_active_deletions := 10

# The region serving before the plan: active after it, or demoted from active by it.
serving contains r if {
	some r, role in input.roles
	role == "active"
	not demoted_any
}

serving contains t.region if {
	some t in input.role_transitions
	t.from == "active"
}

demoted_any if {
	some t in input.role_transitions
	t.from == "active"
}

deletions(region) := [rc.address |
	some rc in input.resource_changes
	rc.type == "instance"
	rc.region == region
	"delete" in rc.change.actions
]

deny contains msg if {
	some region in serving
	n := count(deletions(region))
	n > max_active_deletions
	msg := sprintf("the plan deletes %d instances in the active region %s (at most %d at once)", [n, region, max_active_deletions])
}
