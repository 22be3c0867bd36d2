# expect: database_without_writer
# The active region holds no member of the database, and no backup is restored.

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
}

region "us-west-2" {
  cloud = "aws"
  role  = "standby"
  kubernetes {
    context = "usw2"
  }
  database "ledger" {
    rds_instance = "ledger-usw2"
  }
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
