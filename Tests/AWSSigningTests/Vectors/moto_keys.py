"""Creates an IAM user allowed everything and an access key on a moto server whose first four actions
are unauthenticated (INITIAL_NO_AUTH_ACTION_COUNT=4); prints the key id and secret on one line."""
import json
import sys
import boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="signer-test")
policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
arn = iam.create_policy(PolicyName="signer-test-all", PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
iam.attach_user_policy(UserName="signer-test", PolicyArn=arn)
key = iam.create_access_key(UserName="signer-test")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
