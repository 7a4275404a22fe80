# The data key table moved here from the clinical app. Only Django's state moves; the
# table keeps its name (clinical_datakey) and not a row is copied.

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("clinical", "0005_data_at_rest_encrypted"),
        ("audit", "0005_data_at_rest_encrypted"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DataKey",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ("period", models.DateField(unique=True)),
                        ("master_key_id", models.CharField(max_length=32)),
                        ("wrapped_key", models.BinaryField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("rewrapped_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={"db_table": "clinical_datakey", "ordering": ["period"]},
                ),
            ],
            database_operations=[],
        ),
    ]
