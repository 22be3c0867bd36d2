# expect: database_in_cold_region
# A cold site gets its data by restore, not by a member.

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
    cloudnativepg = "ledger"
  }
}

region "us-west-2" {
  cloud = "aws"
  role  = "standby"
  kubernetes {
    context = "usw2"
  }
  database "ledger" {
    cloudnativepg = "ledger"
  }
}

region "europe" {
  cloud    = "gcp"
  role     = "cold"
  location = "europe-west1-b"
  kubernetes {
    context = "europe"
  }
  database "ledger" {
    cloudnativepg = "ledger"
  }
}

database "ledger" {
  engine  = "postgres"
  writers = ["api"]
}
