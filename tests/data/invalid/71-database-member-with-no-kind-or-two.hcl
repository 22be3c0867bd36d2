# expect: database_kind
# A member names no kind in one region and two in another.

drplan {
  project = "acme"
}

objectives {
  rpo = "1h"
}

provider "aws" {}
provider "gcp" {
  project = "acme-dr"
}

component "api" {
  replicas = { active = 2, standby = 1, cold = 0 }
}

region "us-east-1" {
  cloud = "aws"
  role  = "active"
  kubernetes {
    context = "use1"
  }
  database "ledger" {
    rds_instance   = "ledger-use1"
    aurora_cluster = "ledger-use1"
  }
}

region "us-west-2" {
  cloud = "aws"
  role  = "standby"
  kubernetes {
    context = "usw2"
  }
  database "ledger" {}
}

region "europe" {
  cloud    = "gcp"
  role     = "cold"
  location = "europe-west1-b"
}

database "ledger" {
  engine  = "postgres"
  writers = ["api"]
}
