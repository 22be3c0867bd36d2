# Every backup has a copy in another cloud: losing one provider (an account, a region-wide
# outage, a deletion by mistake) must leave a usable copy elsewhere.
package main

import rego.v1

clouds(sites) := {s | some s in sites; s != "on-premises"}

deny contains msg if {
	some c in input.posture.copies
	count(clouds(c.sites)) < 2
	msg := sprintf("backup %s has no copy in a second cloud (sites: %s)", [c.backup, concat(", ", c.sites)])
}
