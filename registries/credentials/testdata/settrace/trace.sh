docker() { :; }
curl() { :; }
set -x
PASS=pass-S3CR3T-1
REGISTRY_PW='with space S3CR3T-2'
export TOKEN=tok-S3CR3T-3
X=$(export INNER_TOKEN=tok-S3CR3T-4; printf %s robot inner-S3CR3T-5)
docker login -u robot -p pw-S3CR3T-6 registry.example
docker login --password pw-S3CR3T-7 registry.example
docker login --password=pw-S3CR3T-8 registry.example
printf %s robot pass-S3CR3T-9
printf '%s:%s\n' robot pass-S3CR3T-10 >/dev/null
curl -sf -H "Authorization: Bearer bearer-S3CR3T-11" https://registry.example/v2/
curl -u robot:pass-S3CR3T-12 https://registry.example/v2/
echo robot:pass-S3CR3T-13 >/dev/null
AUTH=$(printf %s 'robot:S3CR3T-14' | base64)
echo "$AUTH" >/dev/null
P=short-S3CR3T-15 docker login -u robot --password-stdin registry.example
