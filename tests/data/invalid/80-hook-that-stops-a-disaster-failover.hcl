# expect: hook_blocks_disaster
# A check in the old active region before traffic moves, not allowed to fail: when that
# region is lost it cannot run, and the failover away from it would never happen.

drplan {
  project = "acme"
}

provider "aws" {}

component "api" {
  replicas = { active = 2, standby = 1, cold = 0 }
}

region "us-east-1" {
  cloud = "aws"
  role  = "active"

  kubernetes {
    context   = "acme-use1"
    namespace = "acme"
  }
}

region "us-west-2" {
  cloud = "aws"
  role  = "standby"

  kubernetes {
    context   = "acme-usw2"
    namespace = "acme"
  }
}

hook "preflight" {
  at      = "before_failover"
  region  = "old"
  image   = "acme/dr-scripts:1"
  command = ["/scripts/preflight-checks.sh"]
}
