# bot-core: the multi-region topology described in the bot-core disaster recovery plan
# (Multi-Region Architecture): AWS us-east-1 serves, AWS eu-west-1 is the warm standby,
# a GCP stack in asia-east1 is the cold disaster-recovery site. Hourly encrypted database
# backups go to S3, GCS and an on-premises NAS (3-2-1); DNS fails over through Route 53.
#
# Reference configuration: the bot-core topology of seed/disaster-recovery-plan.md,
# written in the drplan language. drplan must accept this file as it is (examples/bot-core
# in the project may add to it). Attribute names here are the contract; see PRODUCT.md.

drplan {
  project = "bot-core" # stamped on every managed object (tags / labels)

  # Where state lives. Default when the block is absent: local file .drplan/state.json
  # next to the configuration.
  backend "local" {
    path = ".drplan/state.json"
  }
}

objectives {
  rto    = "2h" # recovery time objective: checked against the plan's failover critical path
  rpo    = "1h" # recovery point objective: checked against backup schedule and newest backup age
  uptime = 99.9 # percent; informational, shown in reports
}

# Cloud accounts. `endpoint` is optional everywhere: it points a provider at another API
# address (a local emulator, a VPC endpoint). Credentials always come from the standard
# chains (AWS env/profile, GCP application default credentials, kubeconfig), never from HCL.
provider "aws" {
  # profile  = "bot-core"
  # endpoint = "http://127.0.0.1:5000"
}

provider "gcp" {
  project = "bot-core-dr"
  # endpoint    = "http://127.0.0.1:8400"
  # credentials = "anonymous"          # for emulators; default: application default credentials
}

# Services that run in every region. Replicas are per role: a region's role decides
# how many replicas each component gets there.
component "trading-engine" {
  priority = 1
  replicas = { active = 3, standby = 1, cold = 0 }
}

component "ai-service" {
  priority = 2
  replicas = { active = 3, standby = 1, cold = 0 }
}

component "dashboard" {
  priority = 3
  replicas = { active = 2, standby = 0, cold = 0 }
}

region "us-east-1" {
  cloud    = "aws"
  role     = "active"
  endpoint = "use1.bot-core.com" # where DNS sends traffic when this region serves

  # VM capacity in this region, per role.
  compute "nodes" {
    instance_type = "c6i.2xlarge"
    image         = "ami-0c55b159cbfafe1f0"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  # Workloads: a Deployment per component in this cluster, scaled per role.
  kubernetes {
    context   = "use1" # kubeconfig context
    namespace = "bot-core"
  }

  # The ledger's writer while this region is active.
  database "ledger" {
    rds_instance = "bot-core-ledger-use1"
  }
}

region "eu-west-1" {
  cloud    = "aws"
  role     = "standby"
  endpoint = "euw1.bot-core.com"

  compute "nodes" {
    instance_type = "c6i.2xlarge"
    image         = "ami-0d71ea30463e0ff8d"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  kubernetes {
    context   = "euw1"
    namespace = "bot-core"
  }

  # A cross-region read replica of the writer while this region stands by.
  database "ledger" {
    rds_instance = "bot-core-ledger-euw1"
  }
}

region "asia-pacific-1" {
  cloud    = "gcp"
  role     = "cold"         # nothing runs here until promoted
  location = "asia-east1-a" # GCP zone
  endpoint = "apac.bot-core.com"

  compute "full-stack" {
    instance_type = "e2-standard-8"
    image         = "projects/bot-core-dr/global/images/bot-core-full-stack"
    count         = { active = 3, standby = 1, cold = 0 }
  }

  # The cold site's cluster: nothing runs in it until promotion, when the database is
  # restored into it (see the backup's `restore` block) before the workloads scale up.
  kubernetes {
    context   = "apac"
    namespace = "bot-core"
  }
}

# The trading engine's ledger (database-primary and database-replica in the runbook). A
# failover to the standby stops the trading engine where the writer is, waits until the
# replica has every write, promotes it, renames the old writer and keeps it (never deleted),
# then starts the trading engine on the new writer and moves DNS. With the old region dark,
# the plan shows what the promotion may lose and refuses more than `max_lag` unless a person
# accepts it. The cold site gets its data by restore (see the backup's `restore` block).
database "ledger" {
  engine  = "postgres"
  writers = ["trading-engine"]
  max_lag = "30s" # the runbook's checklist: replication lag under 5 s, 30 s at most
}

backup "database" {
  schedule  = "0 */1 * * *" # cron; must be at least as frequent as objectives.rpo
  type      = "full"
  retention = "30d"
  image     = "bot-core/backup-tool:latest" # runs as a CronJob in the active region's cluster

  # The runbook's own tool, run unchanged: its script, its settings, and its credentials
  # (MONGODB_URI, POSTGRES_URI, SLACK_WEBHOOK) from a Secret, never from this file.
  # drplan's own DRPLAN_* variables are passed besides.
  command         = ["/scripts/backup.sh"]
  env             = { BACKUP_TYPE = "full", RETENTION_DAYS = "30" }
  env_from_secret = ["bot-core-backup-credentials"]

  # Each run writes dr/YYYYmmdd_HHMMSS/ and, last, its manifest: a point without one is
  # incomplete and never restored (docs/guide/recovery-points.md).
  point_format = "%Y%m%d_%H%M%S"
  manifest     = "manifest.json"

  encryption {
    gpg_recipient = "disaster-recovery@bot-core.com"
  }

  # Promoting the cold site restores the newest complete point first (a warm standby holds
  # a live replica and needs none).
  restore {
    command = ["restore-database", "--verify-integrity"]
    timeout = "45m"
    when    = ["cold"]
  }

  destination "primary" {
    s3 {
      bucket        = "bot-core-backups"
      prefix        = "dr/"
      region        = "us-east-1"
      storage_class = "GLACIER"
    }
  }

  destination "secondary" {
    gcs {
      bucket   = "bot-core-backups-eu"
      prefix   = "dr/"
      location = "europe-west1"
    }
  }

  destination "tertiary" {
    nas {
      path = "/mnt/nas/bot-core"
    }
  }
}

failover {
  mode  = "manual"                        # manual | automatic
  order = ["eu-west-1", "asia-pacific-1"] # who takes over, in order

  dns {
    zone   = "bot-core.com" # Route 53 hosted zone
    record = "api.bot-core.com"
    ttl    = 60
  }

  health_check {
    protocol  = "HTTPS"
    port      = 443
    path      = "/health"
    interval  = "30s"
    threshold = 2
  }
}
