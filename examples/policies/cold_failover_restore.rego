# No failover to the cold site without a restore: a cold region holds no data, and
# promoting it without restoring the newest recovery point serves an empty database.
package main

import rego.v1

deny contains msg if {
	some t in input.role_transitions
	t.from == "cold"
	t.to == "active"
	not restored(t.region)
	msg := sprintf("failover to the cold site %s restores no backup: add a `restore` block to the backup", [t.region])
}

restored(region) if {
	some r in input.restores
	r.region == region
}
