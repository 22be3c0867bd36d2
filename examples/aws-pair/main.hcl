# aws-pair: the smallest useful drplan topology. One service in two AWS regions,
# us-east-1 serving and us-west-2 warm, with DNS failover between them.
# The configuration is split over main.hcl, regions.hcl and backup.hcl; drplan merges
# every *.hcl file of the directory.

drplan {
  project = "ledger"

  backend "local" {
    path = ".drplan/state.json"
  }
}

objectives {
  rto    = "1h"
  rpo    = "1h"
  uptime = 99.95
}

provider "aws" {}

component "api" {
  priority = 1
  replicas = { active = 4, standby = 2, cold = 0 }
}

failover {
  mode  = "manual"
  order = ["us-west-2"]

  dns {
    zone   = "ledger.example.com"
    record = "api.ledger.example.com"
    ttl    = 60
  }

  health_check {
    protocol  = "HTTPS"
    port      = 443
    path      = "/healthz"
    interval  = "10s"
    threshold = 3
  }
}
