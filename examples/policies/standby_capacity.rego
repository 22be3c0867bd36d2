# A warm standby keeps at least half the active region's capacity, so that a failover
# starts from a region that can carry the traffic while it scales up.
package main

import rego.v1

active_regions contains name if {
	some name, c in input.capacity
	c.role == "active"
}

deny contains msg if {
	some active in active_regions
	a := input.capacity[active]
	some name, c in input.capacity
	c.role == "standby"
	c.instances * 2 < a.instances
	msg := sprintf("standby %s keeps %d instance(s), less than half of the %d of active %s", [name, c.instances, a.instances, active])
}

deny contains msg if {
	some active in active_regions
	a := input.capacity[active]
	some name, c in input.capacity
	c.role == "standby"
	c.replicas * 2 < a.replicas
	msg := sprintf("standby %s keeps %d replica(s), less than half of the %d of active %s", [name, c.replicas, a.replicas, active])
}
