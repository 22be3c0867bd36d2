# kubernetes-heavy: a marketplace of ten services running in Kubernetes in three AWS
# regions (active, warm standby, cold). The VM pools are small: they only host the
# cluster nodes, and most of the change on failover is Deployment replicas.
# Components live in components.hcl; drplan merges every *.hcl file of the directory.

drplan {
  project = "marketplace"
}

objectives {
  rto    = "30m"
  rpo    = "1h"
  uptime = 99.95
}

provider "aws" {}

# No GCP region: the provider is here for the GCS backup destination.
provider "gcp" {
  project = "marketplace-dr"
}

region "us-east-1" {
  cloud    = "aws"
  role     = "active"
  endpoint = env("MARKETPLACE_USE1_ENDPOINT", "use1.marketplace.example.com")

  compute "system" {
    instance_type = "m6i.large"
    image         = "ami-0b5e3c1d2a4f68790"
    count         = { active = 3, standby = 2, cold = 0 }
  }

  compute "workers" {
    instance_type = "c6i.2xlarge"
    image         = "ami-0b5e3c1d2a4f68790"
    count         = { active = 6, standby = 2, cold = 0 }
  }

  kubernetes {
    context   = "marketplace-use1"
    namespace = "marketplace"
  }
}

region "us-west-2" {
  cloud    = "aws"
  role     = "standby"
  endpoint = "usw2.marketplace.example.com"

  compute "system" {
    instance_type = "m6i.large"
    image         = "ami-07d4e6f8a0b2c4d61"
    count         = { active = 3, standby = 2, cold = 0 }
  }

  compute "workers" {
    instance_type = "c6i.2xlarge"
    image         = "ami-07d4e6f8a0b2c4d61"
    count         = { active = 6, standby = 2, cold = 0 }
  }

  kubernetes {
    context   = "marketplace-usw2"
    namespace = "marketplace"
  }
}

region "eu-central-1" {
  cloud    = "aws"
  role     = "cold" # cluster kept, no nodes, no replicas
  endpoint = "euc1.marketplace.example.com"

  compute "system" {
    instance_type = "m6i.large"
    image         = "ami-0e1f2a3b4c5d6e7f8"
    count         = { active = 3, standby = 2, cold = 0 }
  }

  compute "workers" {
    instance_type = "c6i.2xlarge"
    image         = "ami-0e1f2a3b4c5d6e7f8"
    count         = { active = 6, standby = 2, cold = 0 }
  }

  kubernetes {
    context   = "marketplace-euc1"
    namespace = "marketplace"
  }
}

backup "orders-db" {
  schedule  = "0 * * * *" # hourly, the RPO
  type      = "full"
  retention = "35d"
  image     = "ghcr.io/marketplace/db-backup:1.8.0"

  encryption {
    gpg_recipient = "dr@marketplace.example.com"
  }

  destination "aws" {
    s3 {
      bucket        = "marketplace-orders-backups"
      prefix        = "orders/"
      region        = "us-east-1"
      storage_class = "INTELLIGENT_TIERING"
    }
  }

  destination "gcp" {
    gcs {
      bucket        = "marketplace-orders-backups-dr"
      prefix        = "orders/"
      location      = "us-central1"
      storage_class = "NEARLINE"
    }
  }
}

backup "catalog-db" {
  schedule  = "15 * * * *"
  type      = "incremental"
  retention = "7d"
  image     = "ghcr.io/marketplace/db-backup:1.8.0"

  destination "aws" {
    s3 {
      bucket = "marketplace-catalog-backups"
      region = "us-east-1"
    }
  }

  destination "gcp" {
    gcs {
      bucket   = "marketplace-catalog-backups-dr"
      location = "us-central1"
    }
  }
}

failover {
  mode  = "manual" # `automatic` waits for the watcher: run `drplan failover --to` meanwhile
  order = ["us-west-2", "eu-central-1"]

  dns {
    zone   = "marketplace.example.com"
    record = "www.marketplace.example.com"
    ttl    = 30
  }

  health_check {
    protocol  = "HTTPS"
    port      = 443
    path      = "/healthz"
    interval  = "10s"
    threshold = 3
  }
}
