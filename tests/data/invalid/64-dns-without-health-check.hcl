# expect: dns_without_health_check
# Failover DNS with no health_check block (warning): Route 53 would probe HTTPS :443 / by default.

drplan {
  project = "acme"
}

provider "aws" {}

region "us-east-1" {
  cloud    = "aws"
  role     = "active"
  endpoint = "use1.acme.example.com"

  compute "nodes" {
    instance_type = "m6i.large"
    image         = "ami-0123456789abcdef0"
    count         = { active = 2, standby = 1, cold = 0 }
  }
}

region "us-west-2" {
  cloud    = "aws"
  role     = "standby"
  endpoint = "usw2.acme.example.com"

  compute "nodes" {
    instance_type = "m6i.large"
    image         = "ami-0123456789abcdef0"
    count         = { active = 2, standby = 1, cold = 0 }
  }
}

failover {
  mode  = "manual"
  order = ["us-west-2"]

  dns {
    zone   = "acme.example.com"
    record = "api.acme.example.com"
    ttl    = 60
  }
}
