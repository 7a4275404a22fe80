# DataKey now belongs to bedside.vault, ApiKey and RateLimitWindow to bedside.accounts.
# Their tables stay where they are; only Django's state forgets them here.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("clinical", "0005_data_at_rest_encrypted"),
        ("vault", "0001_initial"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="RateLimitWindow"),
                migrations.DeleteModel(name="ApiKey"),
                migrations.DeleteModel(name="DataKey"),
            ],
            database_operations=[],
        ),
    ]
