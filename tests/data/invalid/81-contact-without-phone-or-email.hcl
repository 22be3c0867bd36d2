# expect: missing_attribute
# A contact gives no way to reach them.

drplan {
  project = "acme"
}

objectives {
  rto    = "2h"
  rpo    = "1h"
  uptime = 99.9
}

provider "aws" {}

component "api" {
  priority = 1
  replicas = { active = 3, standby = 1, cold = 0 }
}

component "worker" {
  priority = 2
  replicas = { active = 2, standby = 1, cold = 0 }
}

region "us-east-1" {
  cloud    = "aws"
  role     = "active"
  endpoint = "use1.acme.example.com"

  compute "nodes" {
    instance_type = "m6i.large"
    image         = "ami-0123456789abcdef0"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  kubernetes {
    context   = "acme-use1"
    namespace = "acme"
  }
}

region "eu-west-1" {
  cloud    = "aws"
  role     = "standby"
  endpoint = "euw1.acme.example.com"

  compute "nodes" {
    instance_type = "m6i.large"
    image         = "ami-0fedcba9876543210"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  kubernetes {
    context   = "acme-euw1"
    namespace = "acme"
  }
}

backup "database" {
  schedule  = "0 * * * *"
  type      = "full"
  retention = "30d"
  image     = "acme/backup-tool:1.4"

  destination "primary" {
    s3 {
      bucket = "acme-backups"
      prefix = "db/"
      region = "us-east-1"
    }
  }

  destination "onprem" {
    nas {
      path = "/mnt/nas/acme"
    }
  }
}

failover {
  mode  = "manual"
  order = ["eu-west-1"]

  dns {
    zone   = "acme.example.com"
    record = "api.acme.example.com"
    ttl    = 60
  }

  health_check {
    protocol  = "HTTPS"
    port      = 443
    path      = "/health"
    interval  = "30s"
    threshold = 3
  }
}

contact "Dana Ops" {
  role  = "incident commander"
  phone = "+1 555 0100"
}

contact "Night desk" {
  role = "on call"
}
