# four-regions: a payments platform in three AWS regions and a cold GCP site. us-east-1
# serves; us-west-2 and eu-west-1 are warm standbys, each with a cross-region read replica
# of the ledger; europe-west1 is the cold site, restored from backups when promoted.
#
# A failover to us-west-2 stops the ledger's writers in us-east-1, waits until us-west-2's
# replica has every write, promotes it, renames the old writer and keeps it, then re-points
# eu-west-1: its old replica is renamed and kept too, and a new one follows us-west-2.

drplan {
  project = "payments"
}

objectives {
  rto = "1h"
  rpo = "15m"
}

provider "aws" {
  # endpoint = "http://127.0.0.1:5000"
}

provider "gcp" {
  project = "payments-dr"
  # endpoint    = "http://127.0.0.1:8400"
  # credentials = "anonymous"
}

component "api" {
  priority = 1
  replicas = { active = 4, standby = 1, cold = 0 }
}

component "ledger" {
  priority = 2
  replicas = { active = 2, standby = 1, cold = 0 }
}

component "reports" {
  priority = 3
  replicas = { active = 2, standby = 0, cold = 0 }
}

# `api` and `ledger` write to it; `reports` only reads, so it comes up in the target
# before writes stop.
database "ledger" {
  engine  = "postgres"
  writers = ["api", "ledger"]
  max_lag = "30s"
}

region "us-east-1" {
  cloud    = "aws"
  role     = "active"
  endpoint = "use1.payments.example.com"

  compute "nodes" {
    instance_type = "m6i.xlarge"
    image         = "ami-0a1b2c3d4e5f60001"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  kubernetes {
    context   = "use1"
    namespace = "payments"
  }

  database "ledger" {
    rds_instance = "payments-ledger-use1"
  }
}

region "us-west-2" {
  cloud    = "aws"
  role     = "standby"
  endpoint = "usw2.payments.example.com"

  compute "nodes" {
    instance_type = "m6i.xlarge"
    image         = "ami-0a1b2c3d4e5f60002"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  kubernetes {
    context   = "usw2"
    namespace = "payments"
  }

  database "ledger" {
    rds_instance = "payments-ledger-usw2"
  }
}

region "eu-west-1" {
  cloud    = "aws"
  role     = "standby"
  endpoint = "euw1.payments.example.com"

  compute "nodes" {
    instance_type = "m6i.xlarge"
    image         = "ami-0a1b2c3d4e5f60003"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  kubernetes {
    context   = "euw1"
    namespace = "payments"
  }

  database "ledger" {
    rds_instance = "payments-ledger-euw1"
  }
}

region "europe-west1" {
  cloud    = "gcp"
  role     = "cold"
  location = "europe-west1-b"
  endpoint = "euw1-gcp.payments.example.com"

  compute "nodes" {
    instance_type = "n2-standard-4"
    image         = "projects/payments-dr/global/images/payments-node"
    count         = { active = 3, standby = 1, cold = 0 }
  }
}

backup "ledger" {
  schedule  = "*/15 * * * *"
  type      = "full"
  retention = "14d"
  image     = "payments/backup-tool:1.4"

  destination "s3" {
    s3 {
      bucket = "payments-ledger-backups"
      prefix = "ledger/"
      region = "us-east-1"
    }
  }

  destination "gcs" {
    gcs {
      bucket   = "payments-ledger-backups-eu"
      prefix   = "ledger/"
      location = "europe-west1"
    }
  }
}

failover {
  mode  = "manual"
  order = ["us-west-2", "eu-west-1", "europe-west1"]

  dns {
    zone   = "payments.example.com"
    record = "api.payments.example.com"
    ttl    = 60
  }

  health_check {
    protocol = "HTTPS"
    port     = 443
    path     = "/healthz"
  }
}
